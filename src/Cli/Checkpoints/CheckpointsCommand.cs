using System.CommandLine;
using CultureInfo = System.Globalization.CultureInfo;
using Geo.Cli.CommandLine;
using Geo.Core.Topology;
using Geo.Storage.Reports;
using Npgsql;
using Spectre.Console;

namespace Geo.Cli.Checkpoints;

/// <summary>
/// <c>geoctl checkpoints</c>: reads every region's live metrics twice, a window apart (the edges', APIs' and
/// replicators' <c>/metrics</c>, and each shard's change-log head and size), compares them with the decision
/// checkpoints, and says per region and shard which scaling step the numbers call for, with the evidence.
/// </summary>
internal static class CheckpointsCommand
{
    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var defaults = new CheckpointThresholds();
        var region = new Option<string?>("--region") { Description = "Only this region (default: every region of the topology).", HelpName = "region" };
        var window = new Option<double>("--window") { Description = "Seconds between the two readings.", DefaultValueFactory = _ => 15, HelpName = "seconds" };
        var p95 = Threshold("--p95", "p95 latency of the edge and the API tier, seconds", defaults.TierP95Seconds);
        var errors = Threshold("--error-rate", "share of requests answered 5xx", defaults.ErrorRate);
        var cpu = Threshold("--cpu", "CPU of the busiest instance of a tier, share of its cores", defaults.Cpu);
        var hit = Threshold("--cache-hit-ratio", "lowest acceptable document cache hit ratio", defaults.CacheHitRatio);
        var writes = Threshold("--shard-writes", "changes written per second to one shard", defaults.ShardWritesPerSecond);
        var size = Threshold("--shard-bytes", "size of one shard database, bytes", defaults.ShardBytes);
        var shardP95 = Threshold("--shard-p95", "p95 of database operations on one shard, seconds", defaults.ShardP95Seconds);
        var lag = Threshold("--lag", "replication lag to a peer, seconds", defaults.LagSeconds);
        var command = new Command("checkpoints", "Decision checkpoints: live p95, error rate, CPU, cache hit ratio, shard writes and size, lag against thresholds decided in advance, and the scaling step each region and shard calls for.")
        {
            region, window, p95, errors, cpu, hit, writes, size, shardP95, lag,
        };
        command.SetAction((p, ct) =>
        {
            var thresholds = new CheckpointThresholds
            {
                TierP95Seconds = p.GetValue(p95),
                ErrorRate = p.GetValue(errors),
                Cpu = p.GetValue(cpu),
                CacheHitRatio = p.GetValue(hit),
                ShardWritesPerSecond = p.GetValue(writes),
                ShardBytes = p.GetValue(size),
                ShardP95Seconds = p.GetValue(shardP95),
                LagSeconds = p.GetValue(lag),
            };
            return RunAsync(new CommandContext(p, host, globals), p.GetValue(region), p.GetValue(window), thresholds, ct);
        });
        return command;
    }

    private static Option<double> Threshold(string name, string what, double value)
        => new(name) { Description = $"Checkpoint: {what} (default {value.ToString(CultureInfo.InvariantCulture)}).", DefaultValueFactory = _ => value, HelpName = "value" };

    private static async Task<int> RunAsync(CommandContext context, string? regionId, double window, CheckpointThresholds thresholds, CancellationToken ct)
    {
        if (window is <= 0 or > 3600)
        {
            throw GeoCliException.Usage("--window: give a number of seconds between 0 and 3600.");
        }

        var topology = context.LoadTopology();
        var regions = topology.Regions.Values.Where(r => regionId is null || r.Id == regionId).OrderBy(r => r.Id, StringComparer.Ordinal).ToList();
        if (regions.Count == 0)
        {
            throw GeoCliException.NotFound($"--region: '{regionId}' is not a region of the topology ({string.Join(", ", topology.Regions.Keys)}).");
        }

        using var http = ScrapeClient(context, "read the services' metrics");
        if (!context.Json)
        {
            context.Info($"Reading metrics twice, {window.ToString(CultureInfo.InvariantCulture)} s apart…");
        }

        var first = await ReadAllAsync(http, regions, ct);
        await Task.Delay(TimeSpan.FromSeconds(window), ct);
        var second = await ReadAllAsync(http, regions, ct);

        var observations = Observe(regions, first, second, window);
        var report = CheckpointEvaluator.Evaluate(observations, thresholds, window);
        var unreachable = first.Unreachable.Union(second.Unreachable, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (context.Json)
        {
            context.WriteJson(new { report.WindowSeconds, report.Thresholds, report.Readings, report.Recommendations, Unreachable = unreachable });
            return ExitCodes.Ok;
        }

        var readings = new Table().AddColumns("Region", "Scope", "Checkpoint", "Value", "Threshold", "");
        foreach (var r in report.Readings)
        {
            readings.AddRow(r.Region, Markup.Escape(r.Scope), Markup.Escape(r.Checkpoint), r.Value is { } v ? v.ToString("0.####", CultureInfo.InvariantCulture) : "-",
                $"{(r.Comparison == "above" ? "≤" : "≥")} {r.Threshold.ToString("0.####", CultureInfo.InvariantCulture)}",
                r.Value is null ? "no data" : r.Breached ? "[red]breached[/]" : "[green]ok[/]");
        }

        context.Stdout.Write(readings);
        var steps = new Table().AddColumns("Region", "Scope", "Step", "Evidence");
        foreach (var r in report.Recommendations)
        {
            steps.AddRow(r.Region, Markup.Escape(r.Scope), r.Step == ScalingStep.None ? "none" : $"[yellow]{StepText(r.Step)}[/]",
                Markup.Escape(r.Evidence.Count == 0 ? "within every checkpoint" : string.Join("; ", r.Evidence)));
        }

        context.Stdout.Write(steps);
        foreach (var u in unreachable)
        {
            context.Info($"[yellow]not read:[/] {Markup.Escape(u)}");
        }

        return ExitCodes.Ok;
    }

    public static string StepText(ScalingStep step) => step switch
    {
        ScalingStep.AddShardAndRebalance => "add a shard and rebalance",
        ScalingStep.AddApiInstances => "add API instances",
        ScalingStep.AddRegion => "add a region",
        ScalingStep.InvestigateReplication => "investigate replication (runbook)",
        ScalingStep.TuneCache => "tune the cache (TTL, memory) before adding capacity",
        _ => "none",
    };

    /// <summary>Each region's observation from two readings <paramref name="window"/> seconds apart.</summary>
    public static List<RegionObservation> Observe(IReadOnlyList<RegionInfo> regions, Readings first, Readings second, double window)
        => [.. regions.Select(r => Observations.Build(r.Id,
            Pair(first, second, r.Id, "edge", 0, window),
            [.. r.Api.Select((_, i) => Pair(first, second, r.Id, "api", i, window)).OfType<ScrapePair>()],
            Pair(first, second, r.Id, "replicator", 0, window),
            [.. r.Shards.Keys.Where(s => first.Shards.ContainsKey(s) && second.Shards.ContainsKey(s))
                .Select(s => new ShardReading(s, first.Shards[s].Seq, second.Shards[s].Seq, second.Shards[s].Bytes))],
            window))];

    private static ScrapePair? Pair(Readings first, Readings second, string region, string tier, int index, double window)
        => first.Metrics.TryGetValue((region, tier, index), out var a) && second.Metrics.TryGetValue((region, tier, index), out var b) ? ScrapePair.Of(a, b, window) : null;

    /// <summary>One reading of every service's metrics and every shard's change-log head and size.</summary>
    public sealed record Readings(Dictionary<(string Region, string Tier, int Index), string> Metrics, Dictionary<string, (long Seq, long Bytes)> Shards, List<string> Unreachable);

    /// <summary>
    /// The client geoctl reads the services' health and <c>/metrics</c> with: mutual TLS with the admin certificate
    /// (every service's <c>/metrics</c> needs a certificate of the deployment), 5 s per request.
    /// </summary>
    public static HttpClient ScrapeClient(CommandContext context, string action)
        => new(new SocketsHttpHandler { SslOptions = context.Admin(action).ClientOptions() }) { Timeout = TimeSpan.FromSeconds(5) };

    public static async Task<Readings> ReadAllAsync(HttpClient http, IReadOnlyList<RegionInfo> regions, CancellationToken ct)
    {
        var result = new Readings([], new(StringComparer.Ordinal), []);
        var scrapes = new List<Task>();
        foreach (var region in regions)
        {
            scrapes.Add(ScrapeAsync(http, result, region.Id, "edge", 0, region.Edge, http2: false, ct));
            scrapes.AddRange(region.Api.Select((api, i) => ScrapeAsync(http, result, region.Id, "api", i, api, http2: false, ct)));
            scrapes.Add(ScrapeAsync(http, result, region.Id, "replicator", 0, region.Replicator, http2: true, ct));
            scrapes.AddRange(region.Shards.Select(s => ReadShardAsync(result, s.Key, s.Value, ct)));
        }

        await Task.WhenAll(scrapes);
        return result;
    }


    // The replicator speaks HTTP/2 only (gRPC over TLS); the edge and the API HTTP/1.1.
    private static async Task ScrapeAsync(HttpClient http, Readings into, string region, string tier, int index, Uri service, bool http2, CancellationToken ct)
    {
        try
        {
            using var request = Geo.Dev.Readiness.Get(service, "/metrics", http2);

            using var response = await http.SendAsync(request, ct);
            response.EnsureSuccessStatusCode();
            var text = await response.Content.ReadAsStringAsync(ct);
            lock (into)
            {
                into.Metrics[(region, tier, index)] = text;
            }
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            lock (into)
            {
                into.Unreachable.Add($"{tier} of {region} ({service}): {e.Message}");
            }
        }
    }

    private static async Task ReadShardAsync(Readings into, string shard, string connectionString, CancellationToken ct)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(ct);
            var reading = await ShardReport.ChangeLogHeadAndSizeAsync(connection, ct);
            lock (into)
            {
                into.Shards[shard] = reading;
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            lock (into)
            {
                into.Unreachable.Add($"shard {shard}: {e.Message}");
            }
        }
    }
}
