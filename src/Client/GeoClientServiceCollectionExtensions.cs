using System.Net;
using Geo.Client;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;

// In the namespace of IServiceCollection, as ASP.NET Core's own Add* methods are.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers <see cref="GeoClient"/>.</summary>
public static class GeoClientServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="GeoClient"/> as a typed <see cref="HttpClient"/>: an Idempotency-Key on every write (kept
    /// across retries), the bearer-token hook, then retries of transient failures (transport errors, 409 in flight, 429,
    /// 502, 503, 504) with jittered exponential backoff, honouring <c>Retry-After</c>, capped by
    /// <see cref="GeoClientOptions.MaxRetryDelay"/>. The returned builder takes further handlers (innermost last).
    /// </summary>
    public static IHttpClientBuilder AddGeoClient(this IServiceCollection services, Action<GeoClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<GeoClientOptions>().Configure(configure);
        services.AddTransient<IdempotencyKeyHandler>();
        services.AddTransient<BearerTokenHandler>();
        var builder = services.AddHttpClient<GeoClient>((sp, http) =>
        {
            var options = sp.GetRequiredService<IOptions<GeoClientOptions>>().Value;
            http.BaseAddress = options.BaseAddress ?? throw new InvalidOperationException("GeoClientOptions.BaseAddress is required.");
            http.Timeout = Timeout.InfiniteTimeSpan; // the resilience pipeline's per-attempt timeout governs
        });
        builder.AddHttpMessageHandler<IdempotencyKeyHandler>();
        builder.AddResilienceHandler("geo", (pipeline, context) =>
        {
            var options = context.ServiceProvider.GetRequiredService<IOptions<GeoClientOptions>>().Value;
            pipeline.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryDelay,
                MaxDelay = options.MaxRetryDelay,
                ShouldRetryAfterHeader = true,
                // Every write carries an Idempotency-Key, so retrying a write is as safe as retrying a read.
                ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
                {
                    { Exception: HttpRequestException or TimeoutException or Polly.Timeout.TimeoutRejectedException } => true,
                    { Result.StatusCode: HttpStatusCode.Conflict or HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway
                        or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout } => true,
                    _ => false,
                }),
            });
            pipeline.AddTimeout(options.AttemptTimeout);
        });
        builder.AddHttpMessageHandler<BearerTokenHandler>();
        return builder;
    }
}
