using Geo.ServiceDefaults.Limits;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Geo.ServiceDefaults.Lifecycle;
using Geo.ServiceDefaults.Telemetry;
using Geo.ServiceDefaults.Topology;

namespace Geo.ServiceDefaults;

/// <summary>What every Geo service gets: JSON logs, problem details, health, metrics, a clock.</summary>
public static class Extensions
{
    /// <summary>Tag of health checks that gate readiness (dependencies); liveness checks only the process.</summary>
    public const string ReadyTag = "ready";

    /// <summary>Adds JSON console logs, ProblemDetails, health checks, OpenTelemetry traces and metrics (<see cref="GeoTelemetry"/>) and <see cref="TimeProvider"/>.</summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            o.UseUtcTimestamp = true;
        });

        // Per-command and per-request chatter drowns the service's own logs; configuration can still lower these.
        builder.Logging.AddFilter("Npgsql", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // Hosting opens a log scope holding the raw request path (user id, collection, key) whenever this category is
        // enabled at all, and every line of the request would carry it; its own lines are request start/finish chatter.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        builder.Logging.AddFilter("Grpc", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http", LogLevel.Warning);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        // An unready dependency is reported by /healthz/ready; the checker's own Error line per probe is noise
        // (every start-up and every Redis blip would look like a failure in the logs).
        builder.Logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService", LogLevel.Critical);

        Logging.UserHashKey.Configure(builder.Configuration);
        builder.AddGeoTopology(); // Geo:Topology, read once for the whole process
        builder.Services.AddProblemDetails();
        builder.Services.AddGeoHttpLimits();
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), ["live"]);
        builder.Services.AddSingleton(Time.SkewedClock.FromConfiguration(builder.Configuration)); // Geo:Clock:OffsetSeconds skews it (tests)
        builder.Services.AddGracefulShutdown();

        builder.AddGeoTelemetry();
        return builder;
    }

    /// <summary>Applies the request timeout, then maps <c>/healthz/live</c>, <c>/healthz/ready</c> and <c>/metrics</c>.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseGracefulShutdown();
        app.UseGeoRequestTimeouts();
        app.MapHealthChecks("/healthz/live", new HealthCheckOptions { Predicate = c => c.Tags.Contains("live") });
        app.MapHealthChecks("/healthz/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag) || c.Tags.Contains("live") });
        app.MapPrometheusScrapingEndpoint("/metrics");
        return app;
    }
}
