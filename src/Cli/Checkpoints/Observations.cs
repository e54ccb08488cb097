namespace Geo.Cli.Checkpoints;

/// <summary>Two scrapes of one service, <see cref="WindowSeconds"/> apart; rates and quantiles come from their difference.</summary>
internal sealed record ScrapePair(IReadOnlyList<PromSample> Before, IReadOnlyList<PromSample> After, double WindowSeconds)
{
    public static ScrapePair Of(string before, string after, double windowSeconds) => new(PromText.Parse(before), PromText.Parse(after), windowSeconds);
}

/// <summary>A shard's change-log head and size at the start and end of the window.</summary>
internal sealed record ShardReading(string Shard, long SeqBefore, long SeqAfter, long Bytes);

/// <summary>Derives a region's observation from its services' scrapes and its shards' readings.</summary>
internal static class Observations
{
    private static readonly string[] NotRequests = ["/healthz/", "/metrics"];

    /// <summary>Several instances of one tier as one scrape pair, each sample labelled with its instance.</summary>
    public static ScrapePair? Merge(IReadOnlyList<ScrapePair> instances)
    {
        if (instances.Count <= 1)
        {
            return instances.Count == 0 ? null : instances[0];
        }

        static List<PromSample> Tag(IEnumerable<PromSample> samples, int i)
            => [.. samples.Select(s => s with { Labels = new Dictionary<string, string>(s.Labels, StringComparer.Ordinal) { ["instance"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) } })];
        return new ScrapePair([.. instances.SelectMany((p, i) => Tag(p.Before, i))], [.. instances.SelectMany((p, i) => Tag(p.After, i))], instances[0].WindowSeconds);
    }

    public static RegionObservation Build(string region, ScrapePair? edge, IReadOnlyList<ScrapePair> apis, ScrapePair? replicator, IReadOnlyList<ShardReading> shards, double windowSeconds)
    {
        var api = Merge(apis);
        var apiCpu = apis.Select(Cpu).Where(c => c is not null).Max();
        var dbByShard = api is null ? [] : api.After.Where(s => s.Name == "db_client_operation_duration_seconds_bucket")
            .Select(s => s.Label("db_client_connection_pool_name")).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        return new RegionObservation(region)
        {
            EdgeP95Seconds = edge is null ? null : P95(edge, "http_server_request_duration_seconds_bucket", IsRequest),
            ApiP95Seconds = api is null ? null : P95(api, "http_server_request_duration_seconds_bucket", IsRequest),
            EdgeErrorRate = edge is null ? null : ErrorRate(edge),
            ApiErrorRate = api is null ? null : ErrorRate(api),
            EdgeCpu = edge is null ? null : Cpu(edge),
            ApiCpu = apiCpu,
            CacheHitRatio = api is null ? null : HitRatio(api),
            Shards = [.. shards.Select(s => new ShardObservation(s.Shard,
                windowSeconds > 0 ? (s.SeqAfter - s.SeqBefore) / windowSeconds : null,
                s.Bytes,
                api is null ? null : P95(api, "db_client_operation_duration_seconds_bucket", l => l.Label("db_client_connection_pool_name") == s.Shard)))],
            LagSecondsByPeer = replicator is null ? new Dictionary<string, double>() : replicator.After
                .Where(s => s.Name == "geo_replicator_lag_seconds" && s.Label("peer") is not null)
                .GroupBy(s => s.Label("peer")!, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.Max(s => s.Value), StringComparer.Ordinal),
        };
    }

    private static bool IsRequest(PromSample s)
        => s.Label("http_route") is not { } route || !NotRequests.Any(p => route.StartsWith(p, StringComparison.Ordinal));

    /// <summary>The 95th percentile of a histogram's observations in the window (linear within the bucket); null without any.</summary>
    public static double? P95(ScrapePair pair, string bucketName, Func<PromSample, bool> where)
    {
        static string Key(PromSample s) => string.Join(',', s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value));
        var before = pair.Before.Where(s => s.Name == bucketName && where(s)).ToDictionary(s => Key(s) + "|" + s.Label("le"), s => s.Value, StringComparer.Ordinal);
        var buckets = pair.After.Where(s => s.Name == bucketName && where(s))
            .GroupBy(s => Bound(s.Label("le")))
            .Select(g => (Le: g.Key, Count: g.Sum(s => s.Value - before.GetValueOrDefault(Key(s) + "|" + s.Label("le")))))
            .OrderBy(b => b.Le).ToList();
        if (buckets.Count == 0 || buckets[^1].Count <= 0)
        {
            return null;
        }

        var rank = 0.95 * buckets[^1].Count;
        double lowerBound = 0, lowerCount = 0;
        foreach (var (le, count) in buckets)
        {
            if (count >= rank)
            {
                if (double.IsPositiveInfinity(le))
                {
                    return lowerBound; // as Prometheus: the highest finite bound
                }

                return lowerBound + ((le - lowerBound) * (rank - lowerCount) / Math.Max(count - lowerCount, 1e-12));
            }

            lowerBound = le;
            lowerCount = count;
        }

        return lowerBound;
    }

    private static double Bound(string? le) => le is null or "+Inf" ? double.PositiveInfinity : double.Parse(le, System.Globalization.CultureInfo.InvariantCulture);

    private static double Delta(ScrapePair pair, string name, Func<PromSample, bool> where)
    {
        static string Key(PromSample s) => string.Join(',', s.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => l.Key + "=" + l.Value));
        var before = pair.Before.Where(s => s.Name == name && where(s)).ToDictionary(Key, s => s.Value, StringComparer.Ordinal);
        return pair.After.Where(s => s.Name == name && where(s)).Sum(s => s.Value - before.GetValueOrDefault(Key(s)));
    }

    public static double? ErrorRate(ScrapePair pair)
    {
        const string name = "http_server_request_duration_seconds_count";
        var all = Delta(pair, name, IsRequest);
        return all <= 0 ? null : Delta(pair, name, s => IsRequest(s) && s.Label("http_response_status_code") is ['5', _, _]) / all;
    }

    public static double? Cpu(ScrapePair pair)
    {
        var cores = pair.After.FirstOrDefault(s => s.Name == "dotnet_process_cpu_count")?.Value;
        var seconds = Delta(pair, "process_cpu_time_seconds_total", _ => true);
        return cores is > 0 && pair.WindowSeconds > 0 ? seconds / pair.WindowSeconds / cores : null;
    }

    public static double? HitRatio(ScrapePair pair)
    {
        var all = Delta(pair, "geo_cache_lookups_total", _ => true);
        return all <= 0 ? null : Delta(pair, "geo_cache_lookups_total", s => s.Label("result") == "hit") / all;
    }
}
