using System.ComponentModel.DataAnnotations;

namespace Geo.RegionService;

/// <summary>The regional API's settings (section <c>Geo</c>).</summary>
internal sealed class RegionServiceOptions
{
    public const string SectionName = "Geo";

    /// <summary>This region's id; must be a region of the topology.</summary>
    [Required]
    public string Region { get; set; } = string.Empty;

    /// <summary>Path of the topology JSON (docs/architecture.md §3).</summary>
    [Required]
    public string Topology { get; set; } = string.Empty;

    /// <summary>Largest accepted document body in bytes. Default 64 KiB.</summary>
    [Range(1, 16 * 1024 * 1024)]
    public int MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>How long idempotency records are kept. Default 24 h.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan IdempotencyTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long a write to a bucket that is being moved waits for the move to flip before answering 503. Default 2 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:30")]
    public TimeSpan FenceWait { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Largest total of document bodies in one page of a listing; a fuller page ends early with <c>next</c> set. Default 1 MiB.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxPageBytes { get; set; } = 1024 * 1024;

    /// <summary>Largest page of a collection listing. Default 1000.</summary>
    [Range(1, 10_000)]
    public int MaxPageSize { get; set; } = 1000;

    /// <summary>Remote HLC readings further ahead than this are refused. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromSeconds(5);
}
