namespace Geo.Cli.Capacity;

/// <summary>The usual back-of-envelope capacity arithmetic (users → DAU → peak concurrency → RPS → database operations), extended with Geo's cache, replication and change log. Pure.</summary>
internal static class CapacityModel
{
    private const double BytesPerKb = 1_000;
    private const int DaysPerYear = 365;

    /// <exception cref="ArgumentException">The inputs are invalid; the message lists every problem.</exception>
    public static CapacityPlan Plan(CapacityInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var errors = inputs.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(Environment.NewLine, errors), nameof(inputs));
        }

        var dau = inputs.Users * inputs.DailyActiveRatio;
        var concurrent = dau * inputs.PeakConcurrencyRatio;
        var peakRps = concurrent * inputs.RpsPerUser;
        var readShare = inputs.ReadsPerWrite / (inputs.ReadsPerWrite + 1);
        var readRps = peakRps * readShare;
        var writeRps = peakRps - readRps;

        // Cache misses only reach Postgres; every write is applied in each region of the replica set, and the origin also appends it to the change log.
        var dbReads = readRps * inputs.DbAmplification * (1 - inputs.CacheHitRatio);
        var dbWrites = writeRps * ((inputs.DbAmplification * inputs.ReplicaSetSize) + inputs.ChangeLogOpsPerWrite);
        var dbOps = dbReads + dbWrites;
        var perRegion = dbOps / inputs.Regions;
        var provisioned = perRegion * (1 + inputs.Headroom);
        var shards = Math.Max(1, (int)Math.Ceiling(provisioned / inputs.ShardCapacity));

        var dailyBytes = dau * inputs.DataPerActiveUserKb * BytesPerKb * inputs.ReplicaSetSize;
        var regionYearBytes = dailyBytes * DaysPerYear / inputs.Regions;

        return new CapacityPlan(
            inputs,
            DailyActiveUsers: dau,
            PeakConcurrentUsers: concurrent,
            PeakRps: peakRps,
            ReadRps: readRps,
            WriteRps: writeRps,
            DbReadOpsPerSecond: dbReads,
            DbWriteOpsPerSecond: dbWrites,
            DbOpsPerSecond: dbOps,
            DbOpsPerRegion: perRegion,
            ProvisionedOpsPerRegion: provisioned,
            ShardsPerRegion: shards,
            ShardUtilizationAtPeak: perRegion / (shards * inputs.ShardCapacity),
            StorageGrowthBytesPerDay: dailyBytes,
            StorageGrowthBytesPerRegionPerYear: regionYearBytes,
            StorageGrowthBytesPerShardPerYear: regionYearBytes / shards);
    }
}

/// <summary>The result of <see cref="CapacityModel.Plan"/>; rates are per second at the daily peak, across all regions unless named per region.</summary>
internal sealed record CapacityPlan(
    CapacityInputs Inputs,
    double DailyActiveUsers,
    double PeakConcurrentUsers,
    double PeakRps,
    double ReadRps,
    double WriteRps,
    double DbReadOpsPerSecond,
    double DbWriteOpsPerSecond,
    double DbOpsPerSecond,
    double DbOpsPerRegion,
    double ProvisionedOpsPerRegion,
    int ShardsPerRegion,
    double ShardUtilizationAtPeak,
    double StorageGrowthBytesPerDay,
    double StorageGrowthBytesPerRegionPerYear,
    double StorageGrowthBytesPerShardPerYear)
{
    /// <summary>Each figure with its unit and the formula that produced it, in reading order.</summary>
    public IReadOnlyList<CapacityRow> Rows =>
    [
        new("dailyActiveUsers", "Daily active users", DailyActiveUsers, "users", "users × dau"),
        new("peakConcurrentUsers", "Peak concurrent users", PeakConcurrentUsers, "users", "DAU × peak-concurrency"),
        new("peakRps", "Peak API requests", PeakRps, "req/s", "concurrent × rps-per-user"),
        new("readRps", "  of which reads", ReadRps, "req/s", "peak RPS × r/(r+1), r = reads per write"),
        new("writeRps", "  of which writes", WriteRps, "req/s", "peak RPS − reads"),
        new("dbReadOpsPerSecond", "DB reads (cache misses)", DbReadOpsPerSecond, "ops/s", "reads × db-amplification × (1 − cache-hit)"),
        new("dbWriteOpsPerSecond", "DB writes (replicated + change log)", DbWriteOpsPerSecond, "ops/s", "writes × (db-amplification × replicas + changelog-ops)"),
        new("dbOpsPerSecond", "DB operations, all regions", DbOpsPerSecond, "ops/s", "DB reads + DB writes"),
        new("dbOpsPerRegion", "DB operations per region", DbOpsPerRegion, "ops/s", "DB operations ÷ regions"),
        new("provisionedOpsPerRegion", "Provisioned per region", ProvisionedOpsPerRegion, "ops/s", "per region × (1 + headroom)"),
        new("shardsPerRegion", "Shards per region", ShardsPerRegion, "shards", "⌈provisioned ÷ shard-capacity⌉, at least 1"),
        new("shardUtilizationAtPeak", "Shard utilization at peak", ShardUtilizationAtPeak, "ratio", "per region ÷ (shards × shard-capacity)"),
        new("storageGrowthBytesPerDay", "Storage growth, all copies", StorageGrowthBytesPerDay, "bytes/day", "DAU × data-per-dau-kb × replicas"),
        new("storageGrowthBytesPerRegionPerYear", "Storage growth per region", StorageGrowthBytesPerRegionPerYear, "bytes/year", "growth/day × 365 ÷ regions"),
        new("storageGrowthBytesPerShardPerYear", "Storage growth per shard", StorageGrowthBytesPerShardPerYear, "bytes/year", "per region ÷ shards"),
    ];
}

/// <summary>One line of a capacity plan.</summary>
internal sealed record CapacityRow(string Key, string Label, double Value, string Unit, string Formula);
