using System.ComponentModel.DataAnnotations;

namespace Geo.ServiceDefaults.Shedding;

/// <summary>Concurrency limit of a service (section <c>Geo:LoadShedding</c>): beyond it, requests get 503 at once.</summary>
public sealed class LoadSheddingOptions
{
    public const string SectionName = "Geo:LoadShedding";

    /// <summary>Requests processed at the same time. Default 256.</summary>
    [Range(1, 100_000)]
    public int MaxConcurrentRequests { get; set; } = 256;

    /// <summary>Requests that may wait for a slot; kept small so latency stays bounded. Default 64.</summary>
    [Range(0, 100_000)]
    public int QueueLimit { get; set; } = 64;

    /// <summary>Seconds put in <c>Retry-After</c> of a shed request. Default 1.</summary>
    [Range(1, 3600)]
    public int RetryAfterSeconds { get; set; } = 1;
}
