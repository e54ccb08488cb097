using System.Globalization;
using System.Threading.RateLimiting;
using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Geo.ServiceDefaults.Shedding;

/// <summary>Sheds load early: a process-wide concurrency limiter that answers 503 + Retry-After instead of queueing without bound.</summary>
public static class LoadSheddingExtensions
{
    /// <summary>Registers the limiter; health and metrics endpoints are never shed.</summary>
    public static IServiceCollection AddGeoLoadShedding(this IServiceCollection services)
    {
        services.AddOptions<LoadSheddingOptions>().BindConfiguration(LoadSheddingOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<LoadSheddingOptions>>((limiter, shedding) =>
        {
            var o = shedding.Value;
            // One partition for all requests; the partitioned limiter owns (and may recycle) the limiter it creates.
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context =>
                IsInfrastructure(context.Request.Path)
                    ? RateLimitPartition.GetNoLimiter("infrastructure")
                    : RateLimitPartition.GetConcurrencyLimiter("requests", _ => new ConcurrencyLimiterOptions
                    {
                        PermitLimit = o.MaxConcurrentRequests,
                        QueueLimit = o.QueueLimit,
                        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                    }));
            limiter.OnRejected = async (rejected, ct) =>
            {
                var response = rejected.HttpContext.Response;
                response.Headers.RetryAfter = o.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                await GeoProblems.WriteAsync(rejected.HttpContext, StatusCodes.Status503ServiceUnavailable, "overloaded",
                    "Overloaded", "The service is at its concurrency limit; retry after the delay in Retry-After.");
            };
        });
        return services;
    }

    private static bool IsInfrastructure(PathString path)
        => path.StartsWithSegments("/healthz", StringComparison.Ordinal) || path.StartsWithSegments("/metrics", StringComparison.Ordinal);
}
