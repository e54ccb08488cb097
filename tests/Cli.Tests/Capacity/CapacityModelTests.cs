using Geo.Cli.Capacity;

namespace Geo.Cli.Tests.Capacity;

public class CapacityModelTests
{
    private const double Tolerance = 1e-6;

    [Fact]
    public void Defaults_at_ten_million_users_give_the_hand_computed_plan()
    {
        var plan = CapacityModel.Plan(new CapacityInputs { Users = 10_000_000 });

        // 10M × 10% = 1M DAU; × 5% = 50k concurrent; × 0.2 = 10k RPS, 80:20 → 8k reads, 2k writes.
        Assert.Equal(1_000_000, plan.DailyActiveUsers, Tolerance);
        Assert.Equal(50_000, plan.PeakConcurrentUsers, Tolerance);
        Assert.Equal(10_000, plan.PeakRps, Tolerance);
        Assert.Equal(8_000, plan.ReadRps, Tolerance);
        Assert.Equal(2_000, plan.WriteRps, Tolerance);

        // Reads: 8k × 3 × (1 − 0.6) = 9,600. Writes: 2k × (3 × 2 replicas + 1 change log) = 14,000.
        Assert.Equal(9_600, plan.DbReadOpsPerSecond, Tolerance);
        Assert.Equal(14_000, plan.DbWriteOpsPerSecond, Tolerance);
        Assert.Equal(23_600, plan.DbOpsPerSecond, Tolerance);

        // 4 regions → 5,900/region; +30% → 7,670; one 10k shard, 59% busy at peak.
        Assert.Equal(5_900, plan.DbOpsPerRegion, Tolerance);
        Assert.Equal(7_670, plan.ProvisionedOpsPerRegion, Tolerance);
        Assert.Equal(1, plan.ShardsPerRegion);
        Assert.Equal(0.59, plan.ShardUtilizationAtPeak, Tolerance);

        // 1M DAU × 100 kB × 2 copies = 200 GB/day; × 365 ÷ 4 regions = 18.25 TB per region per year.
        Assert.Equal(200e9, plan.StorageGrowthBytesPerDay, 1);
        Assert.Equal(18.25e12, plan.StorageGrowthBytesPerRegionPerYear, 1);
        Assert.Equal(18.25e12, plan.StorageGrowthBytesPerShardPerYear, 1);
    }

    [Fact]
    public void Shards_round_up_so_provisioned_load_fits_and_storage_divides_over_them()
    {
        var plan = CapacityModel.Plan(new CapacityInputs { Users = 100_000_000 });

        // Ten times the previous plan: 59,000/region, 76,700 provisioned → ⌈7.67⌉ = 8 shards of 10k.
        Assert.Equal(76_700, plan.ProvisionedOpsPerRegion, Tolerance);
        Assert.Equal(8, plan.ShardsPerRegion);
        Assert.Equal(59_000.0 / 80_000, plan.ShardUtilizationAtPeak, Tolerance);
        Assert.Equal(182.5e12 / 8, plan.StorageGrowthBytesPerShardPerYear, 1);
    }

    [Fact]
    public void Every_input_moves_the_figure_it_should()
    {
        var plan = CapacityModel.Plan(new CapacityInputs
        {
            Users = 2_000_000,
            DailyActiveRatio = 0.05,
            PeakConcurrencyRatio = 0.02,
            RpsPerUser = 1,
            ReadsPerWrite = 9,
            DbAmplification = 2,
            CacheHitRatio = 0.8,
            ChangeLogOpsPerWrite = 2,
            ShardCapacity = 100,
            Regions = 3,
            ReplicaSetSize = 3,
            Headroom = 0.5,
            DataPerActiveUserKb = 10,
        });

        // 2M × 5% = 100k DAU; × 2% = 2,000 concurrent × 1 = 2,000 RPS; 90:10 → 1,800 reads, 200 writes.
        Assert.Equal(2_000, plan.PeakRps, Tolerance);
        Assert.Equal(1_800, plan.ReadRps, Tolerance);
        // Reads: 1,800 × 2 × 0.2 = 720. Writes: 200 × (2 × 3 + 2) = 1,600. Total 2,320; ÷ 3 regions; × 1.5 = 1,160 → 12 shards of 100.
        Assert.Equal(720, plan.DbReadOpsPerSecond, Tolerance);
        Assert.Equal(1_600, plan.DbWriteOpsPerSecond, Tolerance);
        Assert.Equal(1_160, plan.ProvisionedOpsPerRegion, Tolerance);
        Assert.Equal(12, plan.ShardsPerRegion);
        // 100k × 10 kB × 3 copies = 3 GB/day.
        Assert.Equal(3e9, plan.StorageGrowthBytesPerDay, 1);
    }

    [Fact]
    public void A_perfect_cache_removes_database_reads_and_a_tiny_load_still_needs_one_shard()
    {
        var plan = CapacityModel.Plan(new CapacityInputs { Users = 10, CacheHitRatio = 1 });

        Assert.Equal(0, plan.DbReadOpsPerSecond, Tolerance);
        Assert.Equal(1, plan.ShardsPerRegion);
    }

    [Fact]
    public void Default_figures_reproduce_the_usual_estimate_for_ten_million_users()
    {
        // The usual estimate for 10M registered users: 4,000–10,000 API requests/s and 10,000–30,000 database operations/s
        // (before cache and replication, i.e. RPS × amplification).
        var plan = CapacityModel.Plan(new CapacityInputs { Users = 10_000_000 });

        Assert.InRange(plan.PeakRps, 4_000, 10_000);
        Assert.InRange(plan.PeakRps * plan.Inputs.DbAmplification, 10_000, 30_000);
    }

    [Theory]
    [InlineData("--users", -5L, 0.1, 0.6, 4, 2)]
    [InlineData("--users", 0L, 0.1, 0.6, 4, 2)]
    [InlineData("--dau", 10L, 1.5, 0.6, 4, 2)]
    [InlineData("--dau", 10L, 0.0, 0.6, 4, 2)]
    [InlineData("--cache-hit", 10L, 0.1, -0.1, 4, 2)]
    [InlineData("--regions", 10L, 0.1, 0.6, 0, 1)]
    [InlineData("--replicas", 10L, 0.1, 0.6, 2, 3)]
    public void Invalid_inputs_are_reported_naming_the_option(string option, long users, double dau, double cacheHit, int regions, int replicas)
    {
        var inputs = new CapacityInputs { Users = users, DailyActiveRatio = dau, CacheHitRatio = cacheHit, Regions = regions, ReplicaSetSize = replicas };

        var error = Assert.Single(inputs.Validate());
        Assert.StartsWith(option + ":", error, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => CapacityModel.Plan(inputs));
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var inputs = new CapacityInputs { Users = -1, DailyActiveRatio = 2, PeakConcurrencyRatio = -1, RpsPerUser = 0, Headroom = double.NaN };

        Assert.Equal(5, inputs.Validate().Count);
    }
}
