using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Geo.ServiceDefaults.Limits;

/// <summary>
/// Connection and request limits of every Geo service (section <c>Geo:Http</c>; docs/api.md, "Limits"). A slow or
/// oversized client costs one connection and a bounded amount of memory, never the service.
/// </summary>
public sealed class HttpLimitsOptions
{
    public const string SectionName = "Geo:Http";

    /// <summary>Open connections per process; more wait in the accept queue. Default 10,000.</summary>
    [Range(1, 1_000_000)]
    public long MaxConnections { get; set; } = 10_000;

    /// <summary>Largest request body Kestrel accepts at all (each API refuses smaller bodies itself). Default 8 MiB, above a gRPC message.</summary>
    [Range(1024, 1024L * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Total size of a request's headers. Default 32 KiB.</summary>
    [Range(1024, 1024 * 1024)]
    public int MaxRequestHeadersBytes { get; set; } = 32 * 1024;

    /// <summary>Headers per request. Default 64.</summary>
    [Range(8, 1000)]
    public int MaxRequestHeaderCount { get; set; } = 64;

    /// <summary>Length of the request line (method, path, query). Default 8 KiB.</summary>
    [Range(256, 64 * 1024)]
    public int MaxRequestLineBytes { get; set; } = 8 * 1024;

    /// <summary>Time to receive a request's headers. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an idle keep-alive connection stays open. Default 60 s.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:30:00")]
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Slowest body upload and download tolerated (after a 5 s grace): bytes per second. Default 240.</summary>
    [Range(1, 1_000_000)]
    public double MinDataBytesPerSecond { get; set; } = 240;

    /// <summary>
    /// Longest an HTTP request (not a gRPC call, which carries its own deadline, nor a health probe) may run before it
    /// is answered 504 <c>urn:geo:problem:request-timeout</c>. Default 30 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Registers and applies <see cref="HttpLimitsOptions"/>.</summary>
public static class HttpLimits
{
    /// <summary>Binds the limits and applies them to Kestrel; adds the request-timeout policy.</summary>
    public static IServiceCollection AddGeoHttpLimits(this IServiceCollection services)
    {
        services.AddOptions<HttpLimitsOptions>().BindConfiguration(HttpLimitsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<HttpLimitsOptions>>((kestrel, options) =>
        {
            var o = options.Value;
            var limits = kestrel.Limits;
            limits.MaxConcurrentConnections = o.MaxConnections;
            limits.MaxConcurrentUpgradedConnections = o.MaxConnections;
            limits.MaxRequestBodySize = o.MaxRequestBodyBytes;
            limits.MaxRequestHeadersTotalSize = o.MaxRequestHeadersBytes;
            limits.MaxRequestHeaderCount = o.MaxRequestHeaderCount;
            limits.MaxRequestLineSize = o.MaxRequestLineBytes;
            limits.RequestHeadersTimeout = o.RequestHeadersTimeout;
            limits.KeepAliveTimeout = o.KeepAliveTimeout;
            limits.MinRequestBodyDataRate = new MinDataRate(o.MinDataBytesPerSecond, TimeSpan.FromSeconds(5));
            limits.MinResponseDataRate = new MinDataRate(o.MinDataBytesPerSecond, TimeSpan.FromSeconds(5));
            limits.Http2.MaxRequestHeaderFieldSize = Math.Min(o.MaxRequestHeadersBytes, limits.Http2.MaxRequestHeaderFieldSize);
        });
        services.AddRequestTimeouts();
        services.AddOptions<RequestTimeoutOptions>().Configure<IOptions<HttpLimitsOptions>>((timeouts, options) =>
            timeouts.DefaultPolicy = new RequestTimeoutPolicy
            {
                Timeout = options.Value.RequestTimeout,
                TimeoutStatusCode = StatusCodes.Status504GatewayTimeout,
                WriteTimeoutResponse = context => Problems.GeoProblems.WriteAsync(context, StatusCodes.Status504GatewayTimeout, "request-timeout",
                    "Request timeout", $"The request was not answered within {options.Value.RequestTimeout.TotalSeconds:0.#} s; retry it."),
            });
        return services;
    }

    /// <summary>Applies the request timeout to HTTP requests; gRPC calls (their own deadlines) and health probes are exempt.</summary>
    public static WebApplication UseGeoRequestTimeouts(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseWhen(
            context => !(context.Request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) ?? false)
                && !context.Request.Path.StartsWithSegments("/healthz", StringComparison.Ordinal),
            branch => branch.UseRequestTimeouts());
        return app;
    }
}
