using System.Text.Json.Serialization;

namespace Geo.Cli.Checkpoints;

/// <summary>The scaling step a breached checkpoint calls for.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ScalingStep>))]
internal enum ScalingStep
{
    /// <summary>Within every threshold.</summary>
    None,

    /// <summary>The shard's writes, size or database latency are at its ceiling: add a shard and move buckets to it.</summary>
    AddShardAndRebalance,

    /// <summary>The API tier is saturated (latency, CPU or errors) while its shards are not: add RegionService instances.</summary>
    AddApiInstances,

    /// <summary>Requests spend their time between users and the region, not in it: add a region nearer to them.</summary>
    AddRegion,

    /// <summary>Replication cannot keep up: follow the runbook (a slow or partitioned peer is not fixed by capacity).</summary>
    InvestigateReplication,

    /// <summary>
    /// The cache serves too few reads, so they reach the shards: review what is cached and for how long (TTL, memory,
    /// eviction) before adding capacity — the cheaper step, and one that takes load off the shards too.
    /// </summary>
    TuneCache,
}

/// <summary>Thresholds decided in advance; every one can be set on the command line.</summary>
internal sealed record CheckpointThresholds
{
    /// <summary>p95 request latency of a tier (edge, API), in seconds.</summary>
    public double TierP95Seconds { get; init; } = 0.2;

    /// <summary>Share of requests answered 5xx.</summary>
    public double ErrorRate { get; init; } = 0.001;

    /// <summary>CPU used by a process as a share of its cores (the busiest instance of a tier counts).</summary>
    public double Cpu { get; init; } = 0.7;

    /// <summary>Lowest acceptable share of document reads served by the cache.</summary>
    public double CacheHitRatio { get; init; } = 0.8;

    /// <summary>Changes written to one shard per second (local writes and replicated applies).</summary>
    public double ShardWritesPerSecond { get; init; } = 3000;

    /// <summary>Size of one shard database, in bytes.</summary>
    public double ShardBytes { get; init; } = 500e9;

    /// <summary>p95 of the API's database operations on one shard, in seconds.</summary>
    public double ShardP95Seconds { get; init; } = 0.2;

    /// <summary>Replication lag to a peer, in seconds.</summary>
    public double LagSeconds { get; init; } = 30;
}

/// <summary>What was measured over the window, per region (tiers), shard and peer; null where nothing was measured.</summary>
internal sealed record RegionObservation(string Region)
{
    public double? EdgeP95Seconds { get; init; }
    public double? ApiP95Seconds { get; init; }
    public double? EdgeErrorRate { get; init; }
    public double? ApiErrorRate { get; init; }
    public double? EdgeCpu { get; init; }
    public double? ApiCpu { get; init; }
    public double? CacheHitRatio { get; init; }
    public IReadOnlyList<ShardObservation> Shards { get; init; } = [];
    public IReadOnlyDictionary<string, double> LagSecondsByPeer { get; init; } = new Dictionary<string, double>();
}

internal sealed record ShardObservation(string Shard, double? WritesPerSecond, double? Bytes, double? P95Seconds);

/// <summary>One checkpoint's reading: where, what, the value against its threshold.</summary>
internal sealed record CheckpointReading(string Region, string Scope, string Checkpoint, double? Value, double Threshold, bool Breached, string Comparison);

/// <summary>The step the readings of one scope (a region's API tier, a shard, the region) call for, and why.</summary>
internal sealed record Recommendation(string Region, string Scope, ScalingStep Step, IReadOnlyList<string> Evidence);

internal sealed record CheckpointReport(double WindowSeconds, CheckpointThresholds Thresholds, IReadOnlyList<CheckpointReading> Readings, IReadOnlyList<Recommendation> Recommendations);

/// <summary>Turns observations into checkpoint readings and the step each scope calls for.</summary>
internal static class CheckpointEvaluator
{
    public static CheckpointReport Evaluate(IReadOnlyList<RegionObservation> regions, CheckpointThresholds t, double windowSeconds)
    {
        var readings = new List<CheckpointReading>();
        var recommendations = new List<Recommendation>();
        foreach (var r in regions.OrderBy(r => r.Region, StringComparer.Ordinal))
        {
            CheckpointReading Above(string scope, string name, double? value, double threshold)
            {
                var reading = new CheckpointReading(r.Region, scope, name, value, threshold, value > threshold, "above");
                readings.Add(reading);
                return reading;
            }

            CheckpointReading Below(string scope, string name, double? value, double threshold)
            {
                var reading = new CheckpointReading(r.Region, scope, name, value, threshold, value < threshold, "below");
                readings.Add(reading);
                return reading;
            }

            // Shards first: an API that is slow because its database is slow needs a shard, not more instances.
            var shardBreached = false;
            foreach (var s in r.Shards.OrderBy(s => s.Shard, StringComparer.Ordinal))
            {
                var breaches = new[]
                {
                    Above(s.Shard, "writes/s", s.WritesPerSecond, t.ShardWritesPerSecond),
                    Above(s.Shard, "size bytes", s.Bytes, t.ShardBytes),
                    Above(s.Shard, "database p95 s", s.P95Seconds, t.ShardP95Seconds),
                }.Where(x => x.Breached).ToList();
                shardBreached |= breaches.Count > 0;
                recommendations.Add(new Recommendation(r.Region, s.Shard, breaches.Count > 0 ? ScalingStep.AddShardAndRebalance : ScalingStep.None,
                    [.. breaches.Select(Evidence)]));
            }

            var api = new[]
            {
                Above("api", "p95 s", r.ApiP95Seconds, t.TierP95Seconds),
                Above("api", "error rate", r.ApiErrorRate, t.ErrorRate),
                Above("api", "cpu", r.ApiCpu, t.Cpu),
            }.Where(x => x.Breached).ToList();
            var cache = Below("api", "cache hit ratio", r.CacheHitRatio, t.CacheHitRatio);
            var apiStep = cache.Breached ? ScalingStep.TuneCache
                : api.Count > 0 && !shardBreached ? ScalingStep.AddApiInstances
                : ScalingStep.None;
            var apiEvidence = api.Select(Evidence).ToList();
            if (api.Count > 0 && shardBreached)
            {
                apiEvidence.Add("the region's shards are over their checkpoints too: add the shard first");
            }

            if (cache.Breached)
            {
                apiEvidence.Add(Evidence(cache) + " (more reads reach the shards)");
            }

            recommendations.Add(new Recommendation(r.Region, "api", apiStep, apiEvidence));

            var edge = new[]
            {
                Above("edge", "p95 s", r.EdgeP95Seconds, t.TierP95Seconds),
                Above("edge", "error rate", r.EdgeErrorRate, t.ErrorRate),
                Above("edge", "cpu", r.EdgeCpu, t.Cpu),
            };
            var edgeBreaches = edge.Where(x => x.Breached).ToList();
            // The edge is slow but the API behind it is not: the time goes to the distance to the users' regions.
            var distance = edge[0].Breached && r.ApiP95Seconds is { } apiP95 && apiP95 <= t.TierP95Seconds;
            var edgeStep = distance ? ScalingStep.AddRegion : edgeBreaches.Count > 0 && !shardBreached ? ScalingStep.AddApiInstances : ScalingStep.None;
            var edgeEvidence = edgeBreaches.Select(Evidence).ToList();
            if (distance)
            {
                edgeEvidence.Add(FormattableString.Invariant($"api p95 {r.ApiP95Seconds:0.###} s is within {t.TierP95Seconds:0.###} s: the time is spent between the edge and the region"));
            }

            recommendations.Add(new Recommendation(r.Region, "edge", edgeStep, edgeEvidence));

            var lagging = r.LagSecondsByPeer.OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => Above("replication to " + p.Key, "lag s", p.Value, t.LagSeconds)).Where(x => x.Breached).ToList();
            recommendations.Add(new Recommendation(r.Region, "replication", lagging.Count > 0 ? ScalingStep.InvestigateReplication : ScalingStep.None,
                [.. lagging.Select(Evidence)]));
        }

        return new CheckpointReport(windowSeconds, t, readings, recommendations);
    }

    private static string Evidence(CheckpointReading r)
        => FormattableString.Invariant($"{r.Scope} {r.Checkpoint} {r.Value:0.####} is {r.Comparison} {r.Threshold:0.####}");
}
