using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Cli.CommandLine;
using Geo.Core.Topology;
using Geo.Storage.Migrations;
using Geo.Storage.Moves;
using Geo.Storage.Reports;
using Npgsql;
using Spectre.Console;

namespace Geo.Cli.Shards;

/// <summary><c>geoctl shards status|add|plan|apply|verify|cancel</c>: a region's shards and online bucket moves.</summary>
internal static partial class ShardsCommands
{
    public static Command Create(CliHost host, GlobalOptions globals)
    {
        Option<string?> Region(bool required = true) => new("--region") { Description = "The region.", HelpName = "region", Required = required };

        var statusRegion = Region();
        var status = new Command("status", "Shards of a region: buckets owned, rows, size, fences, epoch, moves in progress.") { statusRegion };
        status.SetAction((p, ct) => StatusAsync(new CommandContext(p, host, globals), p.GetValue(statusRegion), ct));

        var addRegion = Region();
        var addId = new Option<string>("--id") { Description = "The new shard's id, e.g. us-east-2.", Required = true, HelpName = "shard" };
        var addConnection = new Option<string>("--connection") { Description = "The new shard database's connection string.", Required = true, HelpName = "connection-string" };
        var add = new Command("add", "Migrate a new shard database and add it to the topology file (it owns no buckets until a move).") { addRegion, addId, addConnection };
        add.SetAction((p, ct) => AddAsync(new CommandContext(p, host, globals), p.GetValue(addRegion)!, p.GetValue(addId)!, p.GetValue(addConnection)!, ct));

        var planRegion = Region();
        var onto = new Option<string?>("--onto") { Description = "Balance onto this shard (the current owners plus it); default: every shard of the region in the topology.", HelpName = "shard" };
        var outFile = new Option<FileInfo?>("--out") { Description = "Write the plan file here.", HelpName = "file" };
        var maxBuckets = new Option<int>("--max-buckets") { Description = "Most buckets per move (one fence each).", DefaultValueFactory = _ => 1024 };
        var plan = new Command("plan", "The fewest bucket moves that balance the region, weighted by rows per bucket; a plan file for 'shards apply'.") { planRegion, onto, outFile, maxBuckets };
        plan.SetAction((p, ct) => PlanAsync(new CommandContext(p, host, globals), p.GetValue(planRegion)!, p.GetValue(onto), p.GetValue(outFile), p.GetValue(maxBuckets), ct));

        var planFile = new Option<FileInfo>("--plan") { Description = "The plan file from 'shards plan --out'.", Required = true, HelpName = "file" };
        var apply = new Command("apply", "Run a plan's moves online (copy, catch up, fence, flip, verify, clean); rerun to resume after a crash.") { planFile };
        apply.SetAction((p, ct) => ApplyAsync(new CommandContext(p, host, globals), p.GetValue(planFile)!, ct));

        var verifyRegion = Region();
        var verify = new Command("verify", "Map vs data (no rows on a shard that does not own their bucket) and, for every completed move, source log vs target row by row.") { verifyRegion };
        verify.SetAction((p, ct) => VerifyAsync(new CommandContext(p, host, globals), p.GetValue(verifyRegion)!, ct));

        var cancelRegion = Region();
        var moveId = new Option<string>("--move") { Description = "The move id (see 'shards status').", Required = true, HelpName = "id" };
        var cancel = new Command("cancel", "Roll a move back before its flip: clear its fences, delete the rows copied to the target.") { cancelRegion, moveId };
        cancel.SetAction((p, ct) => CancelAsync(new CommandContext(p, host, globals), p.GetValue(cancelRegion)!, p.GetValue(moveId)!, ct));

        return new Command("shards", "A region's shards and online bucket moves.") { status, add, plan, apply, verify, cancel };
    }

    private static async Task<int> StatusAsync(CommandContext context, string? regionId, CancellationToken ct)
    {
        await using var region = RegionConnection.Open(context.LoadTopology(), regionId, context.Admin("reach the directory"));
        var map = await region.MapAsync(ct);
        var owned = map.Map.BucketCounts();
        var shards = new List<ShardStatus>();
        foreach (var (id, dataSource) in region.DataSources)
        {
            try
            {
                var rows = (await region.Store(id).BucketRowCountsAsync(ct)).Values.Sum();
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                var size = await ShardReport.DatabaseSizeAsync(connection, ct);
                var fences = await region.Store(id).FencedBucketsAsync(ct);
                shards.Add(new ShardStatus(id, owned.GetValueOrDefault(id), rows, size, fences.Count, null));
            }
            catch (NpgsqlException e)
            {
                shards.Add(new ShardStatus(id, owned.GetValueOrDefault(id), 0, 0, 0, e.Message));
            }
        }

        var progress = new List<MoveProgress>();
        foreach (var dataSource in region.DataSources.Values)
        {
            try
            {
                progress.AddRange(await new MoveProgressStore(dataSource).ListAsync(ct));
            }
            catch (NpgsqlException)
            {
                // Reported in the shard row above.
            }
        }

        var moves = map.Moves.Select(m => new MoveView(m.MoveId, m.SourceShard, m.TargetShard, m.Buckets.Count, m.Phase.ToString(),
            progress.FirstOrDefault(p => p.MoveId == m.MoveId))).ToList();
        var recent = progress.Where(p => map.Moves.All(m => m.MoveId != p.MoveId)).TakeLast(5)
            .Select(p => new MoveView(p.MoveId, p.Source, p.Target, p.Buckets.Length, p.Step, p)).ToList();
        var report = new StatusReport(region.Id, map.Epoch, map.FencedBuckets.Order().ToArray(), shards, moves, recent);
        if (context.Json)
        {
            context.WriteJson(report);
        }
        else
        {
            context.Stdout.MarkupLine($"Region [bold]{Markup.Escape(region.Id)}[/], map epoch {map.Epoch}, fenced buckets in the map: {map.FencedBuckets.Count}");
            var table = new Table().AddColumns("Shard", "Buckets", "Rows", "Size", "Fenced here", "Error");
            foreach (var s in shards)
            {
                table.AddRow(Markup.Escape(s.Shard), N(s.Buckets), N(s.Rows), $"{s.SizeBytes / (1024.0 * 1024):F1} MiB", N(s.FencedBuckets), Markup.Escape(s.Error ?? ""));
            }

            context.Stdout.Write(table);
            if (moves.Count + recent.Count > 0)
            {
                var movesTable = new Table().AddColumns("Move", "From", "To", "Buckets", "Phase", "Rows copied", "Changes replayed", "Write pause ms", "Verified");
                foreach (var m in moves.Concat(recent))
                {
                    movesTable.AddRow(Markup.Escape(m.MoveId), Markup.Escape(m.From), Markup.Escape(m.To), N(m.Buckets), Markup.Escape(m.Phase),
                        N(m.Progress?.RowsCopied ?? 0), N(m.Progress?.ChangesApplied ?? 0), m.Progress?.PauseMs is { } p ? p.ToString("F0", CultureInfo.InvariantCulture) : "-",
                        Markup.Escape(m.Progress?.Verified ?? "-"));
                }

                context.Stdout.Write(movesTable);
            }
        }

        return shards.Any(s => s.Error is not null) ? ExitCodes.Unavailable : ExitCodes.Ok;
    }

    private static async Task<int> AddAsync(CommandContext context, string regionId, string shardId, string connectionString, CancellationToken ct)
    {
        var path = context.TopologyPath();
        var topology = context.LoadTopology();
        if (!topology.Regions.TryGetValue(regionId, out var region))
        {
            throw GeoCliException.NotFound($"--region: unknown region '{regionId}'; the topology has: {string.Join(", ", topology.Regions.Keys)}.");
        }

        if (topology.RegionOfShard(shardId) is { } owner)
        {
            if (owner.Id == regionId && owner.Shards[shardId] == connectionString)
            {
                context.Info($"Shard {Markup.Escape(shardId)} is already in the topology; migrating it again (safe).");
            }
            else
            {
                throw GeoCliException.Usage($"--id: shard '{shardId}' already exists in region '{owner.Id}' with another connection string; choose another id.");
            }
        }

        if (context.DryRun)
        {
            context.Info($"Would migrate {Markup.Escape(shardId)} and add it to region {Markup.Escape(regionId)} in {Markup.Escape(path)}.");
            return ExitCodes.Ok;
        }

        context.Admin("add a shard");
        await context.ConfirmAsync($"Migrate shard {shardId} and add it to region {regionId} in {path}?", ct);
        IReadOnlyList<string> applied;
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(connectionString);
            applied = await ShardMigrator.MigrateAsync(dataSource, ct);
        }
        catch (Exception e) when (e is NpgsqlException or ArgumentException)
        {
            throw new GeoCliException(ExitCodes.Unavailable, $"--connection: cannot migrate the new shard: {e.Message}", e);
        }

        // The topology is the source of connection strings: rewrite it atomically (write aside, then rename over).
        var document = JsonNode.Parse(await File.ReadAllTextAsync(path, ct))!;
        var shards = document["regions"]![regionId]!["shards"]!.AsObject();
        shards[shardId] = connectionString;
        var json = document.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        TopologyLoader.Parse(json, path); // never write a topology that does not load
        var temporary = path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        await File.WriteAllTextAsync(temporary, json, ct);
        File.Move(temporary, path, overwrite: true);

        var result = new AddResult(regionId, shardId, Topology.Secrets.RedactConnectionString(connectionString), applied, path,
            $"Restart the ShardDirectory of {regionId} so it accepts moves onto {shardId} (it reads the topology at start); RegionServices pick the shard up from the file on first use.");
        if (context.Json)
        {
            context.WriteJson(result);
        }
        else
        {
            context.WriteLine($"Added {shardId} to {regionId} in {path} (migrations applied: {(applied.Count == 0 ? "none" : string.Join(", ", applied))}).");
            context.Info(Markup.Escape(result.Next));
        }

        return ExitCodes.Ok;
    }

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private sealed record ShardStatus(string Shard, int Buckets, long Rows, long SizeBytes, int FencedBuckets, string? Error);

    private sealed record MoveView(string MoveId, string From, string To, int Buckets, string Phase, MoveProgress? Progress);

    private sealed record StatusReport(string Region, long Epoch, int[] FencedBuckets, List<ShardStatus> Shards, List<MoveView> Moves, List<MoveView> Recent);

    private sealed record AddResult(string Region, string Shard, string Connection, IReadOnlyList<string> Migrations, string Topology, string Next);
}
