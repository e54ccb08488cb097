using System.Data.Common;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Telemetry;
using Polly.Timeout;

namespace Geo.ServiceDefaults.Resilience;

/// <summary>
/// The named resilience pipelines every outbound call goes through: a timeout, capped jittered retries
/// where a retry is safe, and a circuit breaker so a dead dependency fails fast instead of piling up.
/// </summary>
public static class GeoPipelines
{
    /// <summary>Postgres reads: safe to retry on transient errors.</summary>
    public const string PostgresRead = "geo-postgres-read";

    /// <summary>
    /// Postgres writes: never retried here (a lost commit acknowledgement would make a retry a second write);
    /// clients retry with an Idempotency-Key instead.
    /// </summary>
    public const string PostgresWrite = "geo-postgres-write";

    /// <summary>Redis cache: short timeout, no retry; the cache is optional and callers fall back to Postgres.</summary>
    public const string Redis = "geo-redis";

    /// <summary>gRPC calls to the directory and peers: retried on Unavailable with jitter.</summary>
    public const string Grpc = "geo-grpc";

    /// <summary>Registers the pipelines with <see cref="ResilienceOptions"/> from configuration section <c>Geo:Resilience</c>.</summary>
    public static IServiceCollection AddGeoResilience(this IServiceCollection services)
    {
        services.AddOptions<ResilienceOptions>().BindConfiguration(ResilienceOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();

        // A handled failure is the caller's to report (a 503, a retry, a fallback); Polly's own Error per attempt
        // would make every dependency blip look like a defect in the logs.
        services.Configure<TelemetryOptions>(o => o.SeverityProvider = args => args.Event.EventName switch
        {
            "ExecutionAttempt" => ResilienceEventSeverity.Debug,
            "OnRetry" or "OnTimeout" or "OnCircuitOpened" or "OnCircuitHalfOpened" or "OnCircuitClosed" => ResilienceEventSeverity.Warning,
            _ => args.Event.Severity,
        });

        services.AddResiliencePipeline(PostgresRead, (builder, context) =>
        {
            var o = context.GetOptions<ResilienceOptions>();
            builder
                .AddRetry(Retry(o, new PredicateBuilder<object>().Handle<DbException>(e => e.IsTransient).Handle<TimeoutRejectedException>()))
                .AddCircuitBreaker(Breaker(o, new PredicateBuilder<object>().Handle<DbException>(e => e.IsTransient).Handle<TimeoutRejectedException>()))
                .AddTimeout(o.PostgresTimeout);
        });

        services.AddResiliencePipeline(PostgresWrite, (builder, context) =>
        {
            var o = context.GetOptions<ResilienceOptions>();
            builder
                .AddCircuitBreaker(Breaker(o, new PredicateBuilder<object>().Handle<DbException>(e => e.IsTransient).Handle<TimeoutRejectedException>()))
                .AddTimeout(o.PostgresTimeout);
        });

        services.AddResiliencePipeline(Redis, (builder, context) =>
        {
            var o = context.GetOptions<ResilienceOptions>();
            builder
                .AddCircuitBreaker(Breaker(o, new PredicateBuilder<object>().Handle<Exception>(e => e is not OperationCanceledException || e is TimeoutRejectedException)))
                .AddTimeout(o.RedisTimeout);
        });

        services.AddResiliencePipeline(Grpc, (builder, context) =>
        {
            var o = context.GetOptions<ResilienceOptions>();
            var transient = new PredicateBuilder<object>()
                .Handle<RpcException>(e => e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted)
                .Handle<TimeoutRejectedException>();
            builder
                .AddRetry(Retry(o, transient))
                .AddCircuitBreaker(Breaker(o, transient))
                .AddTimeout(o.GrpcTimeout);
        });

        return services;
    }

    private static RetryStrategyOptions Retry(ResilienceOptions o, PredicateBuilder<object> handle) => new()
    {
        ShouldHandle = handle,
        MaxRetryAttempts = o.MaxRetries,
        BackoffType = DelayBackoffType.Exponential,
        UseJitter = true,
        Delay = o.RetryBaseDelay,
        MaxDelay = TimeSpan.FromSeconds(2),
    };

    private static CircuitBreakerStrategyOptions Breaker(ResilienceOptions o, PredicateBuilder<object> handle) => new()
    {
        ShouldHandle = handle,
        FailureRatio = 0.5,
        MinimumThroughput = o.BreakerMinimumThroughput,
        SamplingDuration = TimeSpan.FromSeconds(10),
        BreakDuration = o.BreakDuration,
    };
}
