using System.Diagnostics;
using Geo.ServiceDefaults.Topology;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Geo.ServiceDefaults.Telemetry;

/// <summary>
/// Traces and metrics of every Geo service, configured in one place: ASP.NET Core, HttpClient (YARP and gRPC channels
/// go through it), gRPC client, Npgsql, Redis (traces), .NET runtime and process, and Geo's own meters and activity sources.
/// Traces go to an OTLP endpoint when the standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (or the traces-only variant) is
/// set, and are not recorded otherwise; every other <c>OTEL_*</c> variable (protocol, headers, sampler, resource
/// attributes) is read by the SDK.
/// </summary>
public static class GeoTelemetry
{
    /// <summary>Prefix of Geo's own meters and activity sources.</summary>
    public const string SourcePrefix = "Geo.";

    /// <summary>Resource attribute naming the service's region.</summary>
    public const string RegionAttribute = "geo.region";

    /// <summary>Resource attribute naming the service's jurisdiction (from the topology).</summary>
    public const string JurisdictionAttribute = "geo.jurisdiction";

    /// <summary>Adds tracing and metrics to <paramref name="builder"/>; the Prometheus exporter serves <c>/metrics</c>.</summary>
    public static void AddGeoTelemetry(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // Log lines written inside a request carry its trace and span ids (JSON console: the scope's TraceId, SpanId).
        builder.Logging.Configure(o => o.ActivityTrackingOptions =
            ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);

        var region = builder.Configuration["Geo:Region"];
        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r
                .AddService(builder.Environment.ApplicationName, serviceInstanceId: $"{builder.Environment.ApplicationName}-{region ?? "none"}-{Environment.ProcessId}")
                .AddAttributes(ResourceAttributes(region, Jurisdiction(builder.AddGeoTopology(), region))))
            .WithMetrics(m => m
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddProcessInstrumentation()
                .AddNpgsqlInstrumentation()
                .AddMeter(SourcePrefix + "*")
                // No scrape cache (the exporter's default keeps a response for 300 ms): a scrape right after an event
                // must show it. A counter read after an action, by an operator or a test, otherwise sees a response made
                // before the action whenever another scrape happened within 300 ms; Prometheus scrapes every few seconds,
                // so the cache saves nothing.
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));

        // Spans are recorded only when there is somewhere to send them: recorded and dropped, they cost every request,
        // statement and Redis command on a write's path (in every service it crosses) their tags and timings. Log lines
        // keep their trace and span ids either way (the host starts an activity per request for its logging scopes), and
        // a write's change-log row keeps its traceparent.
        if (!OtlpConfigured(builder.Configuration))
        {
            return;
        }

        otel.WithTracing(t =>
            {
                t.AddAspNetCoreInstrumentation(o => o.Filter = IsTraced)
                    .AddHttpClientInstrumentation()
                    .AddGrpcClientInstrumentation()
                    .AddNpgsql()
                    // Redis commands by name only (no keys: they hold user ids), flushed every second so a trace is whole soon
                    // after its request; the cache hands its connection over through RedisConnected.
                    .AddRedisInstrumentation(o =>
                    {
                        o.SetVerboseDatabaseStatements = false;
                        o.FlushInterval = TimeSpan.FromSeconds(1);
                    })
                    .AddSource(SourcePrefix + "*");
                t.AddOtlpExporter();
            });
    }

    /// <summary>What a Redis client calls once it connected, so its commands show up as spans of the requests that sent them.</summary>
    public static Action<StackExchange.Redis.IConnectionMultiplexer> RedisConnected(IServiceProvider services) =>
        connection => services.GetService<OpenTelemetry.Instrumentation.StackExchangeRedis.StackExchangeRedisInstrumentation>()?.AddConnection(connection);

    /// <summary>Whether the standard OTLP variables name an endpoint (the exporter is off otherwise).</summary>
    public static bool OtlpConfigured(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])
            || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]);
    }

    // Probes and scrapes would be most of the traces and tell nothing.
    private static bool IsTraced(Microsoft.AspNetCore.Http.HttpContext context)
    {
        var path = context.Request.Path;
        return !path.StartsWithSegments("/healthz") && !path.StartsWithSegments("/metrics");
    }

    private static IEnumerable<KeyValuePair<string, object>> ResourceAttributes(string? region, string? jurisdiction)
    {
        if (region is not null)
        {
            yield return new(RegionAttribute, region);
            yield return new("cloud.region", region);
        }

        if (jurisdiction is not null)
        {
            yield return new(JurisdictionAttribute, jurisdiction);
        }
    }

    // The region's jurisdiction from the topology; none when either setting is missing or invalid (start-up
    // validation reports those).
    private static string? Jurisdiction(TopologyFile topology, string? region)
        => region is not null && topology.TryTopology is { } loaded && loaded.Regions.TryGetValue(region, out var r) ? r.Jurisdiction : null;

    /// <summary>Current W3C <c>traceparent</c> of <paramref name="activity"/> (or the current one), or null.</summary>
    public static string? TraceParent(Activity? activity = null)
    {
        activity ??= Activity.Current;
        return activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : null;
    }
}
