using System.Globalization;

namespace Geo.Cli.Capacity;

/// <summary>
/// The assumptions of a capacity plan. Defaults are common planning rules of thumb, with the reasoning in docs/capacity.md:
/// the chain DAU → peak concurrency → RPS → database amplification, the headroom, the per-node Postgres throughput and
/// the data per active user; the region counts are the local topology's (docs/architecture.md §3).
/// </summary>
internal sealed record CapacityInputs
{
    /// <summary>Registered users.</summary>
    public required long Users { get; init; }

    /// <summary>Share of users active on a day (rule of thumb: 1–10%; we take the top).</summary>
    public double DailyActiveRatio { get; init; } = 0.10;

    /// <summary>Share of daily active users active at the peak moment (rule of thumb: 1–5%; we take the top).</summary>
    public double PeakConcurrencyRatio { get; init; } = 0.05;

    /// <summary>
    /// API requests per second per concurrent user. The usual estimate for 10M registered users is 4,000–10,000 RPS;
    /// 0.2 puts the defaults at the top of it: 10M users × 10% × 5% = 50,000 concurrent → 10,000 RPS.
    /// </summary>
    public double RpsPerUser { get; init; } = 0.2;

    /// <summary>Reads per write among API requests (typical web traffic is about 80% reads → 80:20 = 4).</summary>
    public double ReadsPerWrite { get; init; } = 4;

    /// <summary>Database operations per API request before the cache (rule of thumb: 2–4 per request; we take 3).</summary>
    public double DbAmplification { get; init; } = 3;

    /// <summary>Share of reads served by Redis (caching typically takes 60–80% of the load off the database; we take the low end, to err towards more shards).</summary>
    public double CacheHitRatio { get; init; } = 0.6;

    /// <summary>Change-log operations per write at the origin region: the outbox append in the write's transaction (docs/architecture.md §6).</summary>
    public double ChangeLogOpsPerWrite { get; init; } = 1;

    /// <summary>Operations per second one shard sustains (a well-tuned Postgres sustains roughly 10,000–50,000 transactions/s; we take the low end). `geoctl bench shard` will measure it.</summary>
    public double ShardCapacity { get; init; } = 10_000;

    /// <summary>Regions in the deployment; users are assumed spread evenly over them (local topology: 4).</summary>
    public int Regions { get; init; } = 4;

    /// <summary>Regions in a user's replica set, each holding a writable copy (local topology: 2 per jurisdiction).</summary>
    public int ReplicaSetSize { get; init; } = 2;

    /// <summary>Capacity provisioned above the peak, as a fraction (common practice: 20–30% above the peak, up to 50% for spiky traffic).</summary>
    public double Headroom { get; init; } = 0.3;

    /// <summary>New data per daily active user per day, in kB (sizing rule of thumb: about 100 kB).</summary>
    public double DataPerActiveUserKb { get; init; } = 100;

    /// <summary>Every problem with these inputs, each naming the option and the allowed range; empty when usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Users <= 0)
        {
            errors.Add($"--users: {Users} is not a positive number of users; give e.g. --users 1000000.");
        }

        Fraction(errors, "--dau", DailyActiveRatio, allowZero: false);
        Fraction(errors, "--peak-concurrency", PeakConcurrencyRatio, allowZero: false);
        Fraction(errors, "--cache-hit", CacheHitRatio, allowZero: true);
        Positive(errors, "--rps-per-user", RpsPerUser);
        Positive(errors, "--db-amplification", DbAmplification);
        Positive(errors, "--shard-capacity", ShardCapacity);
        NonNegative(errors, "--read-write-ratio (reads per write)", ReadsPerWrite);
        NonNegative(errors, "--changelog-ops", ChangeLogOpsPerWrite);
        NonNegative(errors, "--headroom", Headroom);
        NonNegative(errors, "--data-per-dau-kb", DataPerActiveUserKb);
        if (Regions < 1)
        {
            errors.Add($"--regions: {Regions} is not a number of regions; give 1 or more.");
        }

        if (ReplicaSetSize < 1 || ReplicaSetSize > Math.Max(Regions, 1))
        {
            errors.Add($"--replicas: {ReplicaSetSize} regions per replica set is outside 1..{Math.Max(Regions, 1)} (it cannot exceed --regions).");
        }

        return errors;
    }

    private static void Fraction(List<string> errors, string option, double value, bool allowZero)
    {
        if (!double.IsFinite(value) || value > 1 || value < 0 || (!allowZero && value == 0))
        {
            var range = allowZero ? "0..1" : "(0, 1]";
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{option}: {value} is outside {range}; it is a fraction, e.g. 0.1 for 10%."));
        }
    }

    private static void Positive(List<string> errors, string option, double value)
    {
        if (!double.IsFinite(value) || value <= 0)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{option}: {value} must be greater than 0."));
        }
    }

    private static void NonNegative(List<string> errors, string option, double value)
    {
        if (!double.IsFinite(value) || value < 0)
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{option}: {value} must be 0 or more."));
        }
    }
}
