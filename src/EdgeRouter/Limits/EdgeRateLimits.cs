using System.Globalization;
using System.Threading.RateLimiting;
using Geo.EdgeRouter.Routing;
using Geo.EdgeRouter.Telemetry;
using Geo.ServiceDefaults.Problems;
using Geo.ServiceDefaults.Shedding;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Geo.EdgeRouter.Limits;

/// <summary>
/// Per-client and per-user token buckets (429 + Retry-After), chained in front of the shared concurrency limiter of
/// <see cref="LoadSheddingExtensions.AddGeoLoadShedding"/> (503 + Retry-After). Nothing queues: a request is admitted or
/// answered at once. Health and metrics endpoints are never limited.
/// </summary>
internal static class EdgeRateLimits
{
    public static IServiceCollection AddEdgeRateLimits(this IServiceCollection services)
    {
        services.AddGeoLoadShedding();
        services.AddOptions<RateLimiterOptions>().PostConfigure<IOptions<EdgeOptions>, EdgeMetrics>((limiter, edge, metrics) =>
        {
            var o = edge.Value;
            var shedding = limiter.GlobalLimiter ?? throw new InvalidOperationException("AddGeoLoadShedding did not set a global limiter.");
            var shed = limiter.OnRejected;
            var perClient = PartitionedRateLimiter.Create<HttpContext, string>(context => IsInfrastructure(context)
                ? RateLimitPartition.GetNoLimiter(string.Empty)
                : RateLimitPartition.GetTokenBucketLimiter(ClientKey(context), _ => Bucket(o.ClientRequestsPerSecond, o.ClientBurst)));
            var perUser = PartitionedRateLimiter.Create<HttpContext, string>(context => RequestShape.UserIdOf(context.Request.Path) is { } userId
                ? RateLimitPartition.GetTokenBucketLimiter(userId, _ => Bucket(o.UserRequestsPerSecond, o.UserBurst))
                : RateLimitPartition.GetNoLimiter(string.Empty));

            // Rate limits first: a client over its budget hears 429 even while the edge is also busy.
            limiter.GlobalLimiter = PartitionedRateLimiter.CreateChained(perClient, perUser, shedding);
            limiter.OnRejected = async (rejected, ct) =>
            {
                if (!rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after))
                {
                    metrics.Rejected("overloaded");
                    if (shed is not null)
                    {
                        await shed(rejected, ct);
                    }

                    return;
                }

                // Only the token buckets carry Retry-After; the client's bucket being empty says which one refused.
                var byClient = perClient.GetStatistics(rejected.HttpContext)?.CurrentAvailablePermits == 0;
                metrics.Rejected(byClient ? "rate-limited-client" : "rate-limited-user");
                var seconds = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds));
                rejected.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await GeoProblems.WriteAsync(rejected.HttpContext, StatusCodes.Status429TooManyRequests, "rate-limited", "Too many requests",
                    byClient
                        ? "This client exceeded its request rate; retry after the delay in Retry-After."
                        : "Requests to this user exceeded their rate; retry after the delay in Retry-After.");
            };
        });
        return services;
    }

    private static TokenBucketRateLimiterOptions Bucket(int perSecond, int burst) => new()
    {
        TokenLimit = burst,
        TokensPerPeriod = perSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    };

    /// <summary>
    /// The authenticated principal (issuer and subject of its token), else the peer IP address (after forwarded headers
    /// from trusted proxies only). Nothing the client writes in a header chooses the bucket.
    /// </summary>
    internal static string ClientKey(HttpContext context)
    {
        if (context.User.Identity?.IsAuthenticated == true && context.User.FindFirst("sub")?.Value is { Length: > 0 } subject)
        {
            var issuer = context.User.FindFirst("iss")?.Value ?? string.Empty;
            var key = issuer + " " + subject;
            return "sub:" + (key.Length > 256 ? key[..256] : key);
        }

        return "ip:" + (context.Connection.RemoteIpAddress?.ToString() ?? "unknown");
    }

    private static bool IsInfrastructure(HttpContext context)
        => context.Request.Path.StartsWithSegments("/healthz", StringComparison.Ordinal) || context.Request.Path.StartsWithSegments("/metrics", StringComparison.Ordinal);
}
