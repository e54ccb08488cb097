using System.ComponentModel.DataAnnotations;

namespace Geo.Storage.Retention;

/// <summary>
/// What the retention job removes from each shard and when (section <c>Replicator:Retention</c>; the replicator runs
/// the job, docs/operations.md "Retention"). Every pass is capped: at most <see cref="BatchSize"/> rows per statement
/// and <see cref="MaxBatchesPerPass"/> statements per table, so a backlog is worked off over several passes without a
/// long transaction or a long lock.
/// </summary>
public sealed class RetentionOptions
{
    public const string SectionName = "Replicator:Retention";

    /// <summary>Period of the job. Default 1 min.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan Interval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Most rows one DELETE removes. Default 1000.</summary>
    [Range(1, 100_000)]
    public int BatchSize { get; set; } = 1000;

    /// <summary>Most DELETE statements per table per pass. Default 20.</summary>
    [Range(1, 10_000)]
    public int MaxBatchesPerPass { get; set; } = 20;

    /// <summary>
    /// Remove idempotency records once they expired. Their lifetime is the API's <c>RegionService:IdempotencyTtl</c>
    /// (24 h by default), stored in each record; an expired record already counts as absent. Default on.
    /// </summary>
    public bool Idempotency { get; set; } = true;

    /// <summary>Remove conflict-log entries after <see cref="ConflictRetention"/>. Default on.</summary>
    public bool Conflicts { get; set; } = true;

    /// <summary>How long a conflict-log entry is kept after it was recorded. Default 30 days.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "3650.00:00:00")]
    public TimeSpan ConflictRetention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>Collect document tombstones (see <see cref="TombstoneGrace"/>). Default on.</summary>
    public bool Tombstones { get; set; } = true;

    /// <summary>
    /// A tombstone is collected once every replica of the user acknowledged it and its version is older than this.
    /// A replicated write of the collected key at or below the bucket's collection floor is skipped afterwards, so the
    /// grace period must exceed the longest delay a write may take to reach this region (a partition, a paused
    /// replicator): a write of the same bucket delayed longer than that is refused rather than applied. Default 7 days.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "3650.00:00:00")]
    public TimeSpan TombstoneGrace { get; set; } = TimeSpan.FromDays(7);
}
