using System.ComponentModel.DataAnnotations;

namespace Geo.ServiceDefaults.Resilience;

/// <summary>Timeouts, retries and breaker settings of the shared pipelines (section <c>Geo:Resilience</c>).</summary>
public sealed class ResilienceOptions
{
    public const string SectionName = "Geo:Resilience";

    /// <summary>Per Postgres call, including the retry's attempt. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:05:00")]
    public TimeSpan PostgresTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Per Redis call. Default 250 ms: a slow cache is worse than none.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:30")]
    public TimeSpan RedisTimeout { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Per gRPC unary call. Default 3 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:05:00")]
    public TimeSpan GrpcTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Retries after the first attempt, where retrying is safe. Default 2 (capped so load never multiplies far).</summary>
    [Range(0, 5)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>First backoff delay; grows exponentially with jitter. Default 50 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:00:10")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Calls seen in the sampling window before the breaker may open. Default 10.</summary>
    [Range(2, 10_000)]
    public int BreakerMinimumThroughput { get; set; } = 10;

    /// <summary>How long an open breaker fails fast before probing again. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(5);
}
