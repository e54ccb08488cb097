using System.Globalization;
using System.Text;
using Geo.Cli.Checkpoints;

namespace Geo.Cli.Tests.Checkpoints;

/// <summary>
/// <c>geoctl checkpoints</c> on synthetic metrics: two Prometheus scrapes per service a window apart, shard readings,
/// and the step each scope calls for.
/// </summary>
public class CheckpointTests
{
    private const double Window = 10;
    private static readonly CheckpointThresholds Defaults = new();

    [Fact]
    public void Healthy_numbers_call_for_no_step()
    {
        var report = Evaluate(Region());
        Assert.All(report.Recommendations, r => Assert.Equal(ScalingStep.None, r.Step));
        Assert.DoesNotContain(report.Readings, r => r.Breached);
    }

    [Fact]
    public void A_shard_over_its_write_rate_calls_for_a_shard_and_a_rebalance_not_for_api_instances()
    {
        // 40 000 changes in 10 s on eu-west-0 (4000/s over 3000/s), and the API slow because of it.
        var report = Evaluate(Region(apiSlowShare: 0.5, seq0: 40_000));
        var shard = Step(report, "eu-west-0");
        Assert.Equal(ScalingStep.AddShardAndRebalance, shard.Step);
        Assert.Contains(shard.Evidence, e => e.StartsWith("eu-west-0 writes/s 4000 is above 3000", StringComparison.Ordinal));
        Assert.Equal(ScalingStep.None, Step(report, "eu-west-1").Step);
        var api = Step(report, "api");
        Assert.Equal(ScalingStep.None, api.Step);
        Assert.Contains(api.Evidence, e => e.Contains("add the shard first", StringComparison.Ordinal));
    }

    [Fact]
    public void A_shard_over_its_size_or_database_latency_calls_for_a_shard()
    {
        Assert.Equal(ScalingStep.AddShardAndRebalance, Step(Evaluate(Region(bytes1: 600e9)), "eu-west-1").Step);
        Assert.Equal(ScalingStep.AddShardAndRebalance, Step(Evaluate(Region(dbSlowShare0: 0.2)), "eu-west-0").Step);
    }

    [Fact]
    public void A_slow_api_with_healthy_shards_calls_for_api_instances()
    {
        var report = Evaluate(Region(apiSlowShare: 0.2));
        var api = Step(report, "api");
        Assert.Equal(ScalingStep.AddApiInstances, api.Step);
        Assert.Contains(api.Evidence, e => e.StartsWith("api p95 s ", StringComparison.Ordinal) && e.EndsWith("is above 0.2", StringComparison.Ordinal));
        Assert.All(report.Recommendations.Where(r => r.Scope.StartsWith("eu-west-", StringComparison.Ordinal)), r => Assert.Equal(ScalingStep.None, r.Step));
    }

    [Fact]
    public void A_busy_api_cpu_calls_for_api_instances()
    {
        // 16 CPU-seconds in 10 s on 2 cores: 80%.
        var api = Step(Evaluate(Region(apiCpuSeconds: 16)), "api");
        Assert.Equal(ScalingStep.AddApiInstances, api.Step);
        Assert.Contains("api cpu 0.8 is above 0.7", api.Evidence);
    }

    [Fact]
    public void An_error_rate_over_a_tenth_of_a_percent_calls_for_api_instances()
    {
        var api = Step(Evaluate(Region(api5xx: 5)), "api"); // 5 of 1000 requests
        Assert.Equal(ScalingStep.AddApiInstances, api.Step);
        Assert.Contains("api error rate 0.005 is above 0.001", api.Evidence);
    }

    [Fact]
    public void A_slow_edge_in_front_of_a_fast_api_calls_for_a_region()
    {
        var edge = Step(Evaluate(Region(edgeSlowShare: 0.3)), "edge");
        Assert.Equal(ScalingStep.AddRegion, edge.Step);
        Assert.Contains(edge.Evidence, e => e.Contains("the time is spent between the edge and the region", StringComparison.Ordinal));
    }

    [Fact]
    public void Lag_over_its_checkpoint_calls_for_the_replication_runbook()
    {
        var replication = Step(Evaluate(Region(lag: 45)), "replication");
        Assert.Equal(ScalingStep.InvestigateReplication, replication.Step);
        Assert.Contains("replication to eu-central lag s 45 is above 30", replication.Evidence);
    }

    [Fact]
    public void A_cache_hit_ratio_under_its_checkpoint_calls_for_tuning_the_cache()
    {
        var report = Evaluate(Region(hits: 50, misses: 50));
        Assert.Contains(report.Readings, r => r.Checkpoint == "cache hit ratio" && r.Breached && r.Value == 0.5);
        var api = Step(report, "api");
        Assert.Equal(ScalingStep.TuneCache, api.Step);
        Assert.Contains(api.Evidence, e => e.StartsWith("api cache hit ratio 0.5 is below 0.8", StringComparison.Ordinal));
    }

    [Fact]
    public void A_slow_api_with_a_low_cache_hit_ratio_calls_for_the_cache_before_api_instances()
    {
        var api = Step(Evaluate(Region(apiSlowShare: 0.2, hits: 50, misses: 50)), "api");
        Assert.Equal(ScalingStep.TuneCache, api.Step);
        Assert.Contains(api.Evidence, e => e.StartsWith("api p95 s ", StringComparison.Ordinal));
    }

    [Fact]
    public void Thresholds_are_the_callers()
    {
        var report = CheckpointEvaluator.Evaluate([Region(apiSlowShare: 0.2)], Defaults with { TierP95Seconds = 1 }, Window);
        Assert.Equal(ScalingStep.None, Step(report, "api").Step);
    }

    [Fact]
    public void P95_interpolates_within_the_bucket_of_the_window_like_Prometheus()
    {
        // In the window: 90 requests under 0.1 s, 10 between 0.25 and 0.5 s; rank 95 is half-way into (0.25, 0.5].
        var before = Histogram("http_server_request_duration_seconds", "", (0.1, 1000), (0.25, 1000), (0.5, 1000), (double.PositiveInfinity, 1000));
        var after = Histogram("http_server_request_duration_seconds", "", (0.1, 1090), (0.25, 1090), (0.5, 1100), (double.PositiveInfinity, 1100));
        var p95 = Observations.P95(ScrapePair.Of(before, after, Window), "http_server_request_duration_seconds_bucket", _ => true);
        Assert.Equal(0.375, p95!.Value, 1e-9);
    }

    [Fact]
    public void Scrapes_are_read_with_labels_and_comments_skipped()
    {
        var samples = PromText.Parse("# TYPE x counter\nx_total{a=\"1\",b=\"q\\\"uote\"} 3.5 1700000000\ny 2\n");
        Assert.Equal(2, samples.Count);
        Assert.Equal("q\"uote", samples[0].Label("b"));
        Assert.Equal(3.5, samples[0].Value);
        Assert.Equal(2, samples[1].Value);
    }

    private static CheckpointReport Evaluate(RegionObservation region) => CheckpointEvaluator.Evaluate([region], Defaults, Window);

    private static Recommendation Step(CheckpointReport report, string scope) => Assert.Single(report.Recommendations, r => r.Scope == scope);

    /// <summary>One region's observation built from synthetic scrapes: 1000 requests per tier in the window.</summary>
    private static RegionObservation Region(double apiSlowShare = 0, double edgeSlowShare = 0, double apiCpuSeconds = 4, int api5xx = 0,
        double dbSlowShare0 = 0, long seq0 = 1000, double bytes1 = 1e9, double lag = 1, int hits = 90, int misses = 10)
    {
        string Service(double slowShare, int errors, double cpuSeconds, bool after, string extra)
        {
            var n = after ? 1000 : 0;
            var slow = (int)(n * slowShare);
            var text = new StringBuilder();
            text.Append(Histogram("http_server_request_duration_seconds", "http_route=\"/v1/{**rest}\",",
                (0.05, n - slow), (0.25, n - slow), (0.5, n), (double.PositiveInfinity, n)));
            text.Append(CultureInfo.InvariantCulture, $"http_server_request_duration_seconds_count{{http_route=\"/v1/{{**rest}}\",http_response_status_code=\"200\"}} {n - (after ? errors : 0)}\n");
            text.Append(CultureInfo.InvariantCulture, $"http_server_request_duration_seconds_count{{http_route=\"/v1/{{**rest}}\",http_response_status_code=\"503\"}} {(after ? errors : 0)}\n");
            // Readiness probes fail during start-up: never requests, never errors.
            text.Append(CultureInfo.InvariantCulture, $"http_server_request_duration_seconds_count{{http_route=\"/healthz/ready\",http_response_status_code=\"503\"}} {(after ? 500 : 0)}\n");
            text.Append(CultureInfo.InvariantCulture, $"process_cpu_time_seconds_total{{cpu_mode=\"user\"}} {100 + (after ? cpuSeconds : 0)}\n");
            text.Append("dotnet_process_cpu_count 2\n");
            text.Append(extra);
            return text.ToString();
        }

        string Db(string shard, double slowShare, bool after)
        {
            var n = after ? 2000 : 0;
            var slow = (int)(n * slowShare);
            return Histogram("db_client_operation_duration_seconds", $"db_client_connection_pool_name=\"{shard}\",", (0.01, n - slow), (0.5, n), (double.PositiveInfinity, n));
        }

        string Api(bool after) => Service(apiSlowShare, api5xx, apiCpuSeconds, after,
            Db("eu-west-0", dbSlowShare0, after) + Db("eu-west-1", 0, after)
            + $"geo_cache_lookups_total{{result=\"hit\"}} {(after ? hits : 0)}\ngeo_cache_lookups_total{{result=\"miss\"}} {(after ? misses : 0)}\n");

        var edge = ScrapePair.Of(Service(edgeSlowShare, 0, 2, false, ""), Service(edgeSlowShare, 0, 2, true, ""), Window);
        var api = ScrapePair.Of(Api(false), Api(true), Window);
        var replicator = ScrapePair.Of("", FormattableString.Invariant($"geo_replicator_lag_seconds{{peer=\"eu-central\"}} {lag}\n"), Window);
        return Observations.Build("eu-west", edge, [api], replicator,
            [new ShardReading("eu-west-0", 0, seq0, (long)1e9), new ShardReading("eu-west-1", 0, 1000, (long)bytes1)], Window);
    }

    private static string Histogram(string name, string labels, params (double Le, double Count)[] buckets)
    {
        var text = new StringBuilder();
        foreach (var (le, count) in buckets)
        {
            var bound = double.IsPositiveInfinity(le) ? "+Inf" : le.ToString(CultureInfo.InvariantCulture);
            text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels}le=\"{bound}\"}} {count}\n");
        }

        return text.ToString();
    }
}
