using System.Globalization;
using Geo.Cli.CommandLine;
using Geo.Core.Placement;
using Geo.Storage.Moves;
using Spectre.Console;

namespace Geo.Cli.Shards;

// geoctl shards plan|apply|verify|cancel: the online bucket moves of docs/architecture.md §9 (MoveRunner runs one).
internal static partial class ShardsCommands
{
    private static async Task<int> PlanAsync(CommandContext context, string regionId, string? onto, FileInfo? outFile, int maxBuckets, CancellationToken ct)
    {
        if (maxBuckets < 1)
        {
            throw GeoCliException.Usage("--max-buckets must be 1 or more.");
        }

        await using var region = RegionConnection.Open(context.LoadTopology(), regionId, context.Admin("reach the directory"));
        var map = await region.MapAsync(ct);
        if (map.Moves.Count > 0)
        {
            context.Info($"[yellow]Moves in progress: {Markup.Escape(string.Join(", ", map.Moves.Select(m => m.MoveId)))}; finish or cancel them first for a plan that stays valid.[/]");
        }

        IReadOnlyList<string> targets;
        if (onto is not null)
        {
            region.DataSource(onto);
            targets = [.. map.Map.Shards.Append(onto).Distinct(StringComparer.Ordinal)];
        }
        else
        {
            targets = [.. region.Region.Shards.Keys];
        }

        var rows = new long[Buckets.Count];
        foreach (var shard in map.Map.Shards)
        {
            foreach (var (bucket, count) in await region.Store(shard).BucketRowCountsAsync(ct))
            {
                if (map.Map.ShardOf(bucket) == shard)
                {
                    rows[bucket] += count;
                }
            }
        }

        var plan = MovePlan.Create(map, targets, rows, maxBuckets, TimeProvider.System.GetUtcNow());
        if (outFile is not null)
        {
            await File.WriteAllTextAsync(outFile.FullName, plan.ToJson(), ct);
            context.Info($"Plan written to {Markup.Escape(outFile.FullName)}; run 'geoctl shards apply --plan {Markup.Escape(outFile.FullName)}'.");
        }

        if (context.Json)
        {
            context.WriteLine(plan.ToJson());
        }
        else
        {
            context.Stdout.MarkupLine($"Plan for [bold]{Markup.Escape(regionId)}[/] at map epoch {plan.Epoch}: {plan.Moves.Sum(m => m.Buckets.Length)} buckets, {N(plan.Moves.Sum(m => m.Rows))} of {N(plan.TotalRows)} rows");
            var table = new Table().AddColumns("Move", "From", "To", "Buckets", "Rows");
            foreach (var m in plan.Moves)
            {
                table.AddRow(Markup.Escape(m.MoveId), Markup.Escape(m.From), Markup.Escape(m.To), N(m.Buckets.Length), N(m.Rows));
            }

            context.Stdout.Write(table);
        }

        return ExitCodes.Ok;
    }

    private static async Task<int> ApplyAsync(CommandContext context, FileInfo planFile, CancellationToken ct)
    {
        var plan = MovePlan.Load(planFile.FullName);
        await using var region = RegionConnection.Open(context.LoadTopology(), plan.Region, context.Admin("reach the directory"));
        if (context.DryRun)
        {
            var map = await region.MapAsync(ct);
            context.Info(map.Epoch == plan.Epoch
                ? $"Would run {plan.Moves.Count} move(s) of {plan.Moves.Sum(m => m.Buckets.Length)} buckets in {Markup.Escape(plan.Region)}."
                : $"[yellow]The plan was made at epoch {plan.Epoch}; the map is at {map.Epoch}: apply resumes its begun moves and refuses to start new ones.[/]");
            return ExitCodes.Ok;
        }

        context.Admin("move shards");
        await context.ConfirmAsync($"Move {plan.Moves.Sum(m => m.Buckets.Length)} buckets in {plan.Region} ({plan.Moves.Count} move(s))?", ct);

        // A plan is current when its epoch is the map's, or when it was already being applied (resume).
        var anyBegun = false;
        foreach (var move in plan.Moves)
        {
            anyBegun |= await region.GetMoveAsync(move.MoveId, ct) is not null;
        }

        var results = new List<MoveProgress>();
        await WithProgressAsync(context, plan.Moves, async report =>
        {
            var runner = new MoveRunner(region, report);
            foreach (var move in plan.Moves)
            {
                results.Add(await runner.RunAsync(move, anyBegun ? null : plan.Epoch, ct));
                anyBegun = true;
            }
        });

        if (context.Json)
        {
            context.WriteJson(results);
        }
        else
        {
            var table = new Table().AddColumns("Move", "Step", "Rows copied", "Changes replayed", "Write pause ms", "Rows cleaned", "Verified");
            foreach (var r in results)
            {
                table.AddRow(Markup.Escape(r.MoveId), Markup.Escape(r.Step), N(r.RowsCopied), N(r.ChangesApplied),
                    r.PauseMs is { } p ? p.ToString("F0", CultureInfo.InvariantCulture) : "-", N(r.RowsCleaned ?? 0), Markup.Escape(r.Verified ?? "-"));
            }

            context.Stdout.Write(table);
        }

        return ExitCodes.Ok;
    }

    private static async Task WithProgressAsync(CommandContext context, IReadOnlyList<PlannedMove> moves, Func<Action<string, int, string>, Task> run)
    {
        if (!context.Stderr.Profile.Capabilities.Interactive)
        {
            await run((id, step, text) => context.Info(Markup.Escape($"{id} [{step}/{MoveRunner.Steps}] {text}")));
            return;
        }

        await context.Stderr.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                var tasks = moves.ToDictionary(m => m.MoveId, m => progress.AddTask(Markup.Escape(m.MoveId), maxValue: MoveRunner.Steps));
                await run((id, step, text) =>
                {
                    var task = tasks[id];
                    task.Value = step;
                    task.Description = $"{Markup.Escape(id)} [grey]{Markup.Escape(text)}[/]";
                });
            });
    }

    private static async Task<int> VerifyAsync(CommandContext context, string regionId, CancellationToken ct)
    {
        await using var region = RegionConnection.Open(context.LoadTopology(), regionId, context.Admin("reach the directory"));
        var map = await region.MapAsync(ct);
        var problems = new List<string>();
        var checks = new List<string>();

        // Buckets in flight may have rows on both sides until the move completes.
        var inFlight = map.Moves.SelectMany(m => m.Buckets.Select(b => (b, m.SourceShard, m.TargetShard))).ToList();
        foreach (var (shard, dataSource) in region.DataSources)
        {
            var stray = (await BucketData.BucketsWithRowsAsync(dataSource, ct))
                .Where(b => map.Map.ShardOf(b) != shard && !inFlight.Any(f => f.b == b && (f.SourceShard == shard || f.TargetShard == shard)))
                .Order().ToList();
            checks.Add($"{shard}: map vs data, {stray.Count} stray bucket(s)");
            if (stray.Count > 0)
            {
                problems.Add($"{shard} holds rows of {stray.Count} bucket(s) it does not own: {string.Join(", ", stray.Take(10))}{(stray.Count > 10 ? ", ..." : "")}");
            }
        }

        foreach (var (shard, dataSource) in region.DataSources)
        {
            foreach (var move in (await new MoveProgressStore(dataSource).ListAsync(ct)).Where(m => m.Step == "completed"))
            {
                var (same, newer, missing) = RowComparison.Compare(
                    await BucketData.ReadLoggedRowsAsync(dataSource, move.Buckets, ct), await BucketData.ReadRowsAsync(region.DataSource(move.Target), move.Buckets, ct));
                checks.Add($"{move.MoveId}: {same + newer} rows of the source log found on {move.Target} ({same} as logged, {newer} newer)");
                problems.AddRange(missing.Select(m => $"{move.MoveId}: {m}"));
            }
        }

        if (context.Json)
        {
            context.WriteJson(new { region = regionId, epoch = map.Epoch, clean = problems.Count == 0, checks, problems });
        }
        else
        {
            foreach (var check in checks)
            {
                context.WriteLine(check);
            }

            context.WriteLine(problems.Count == 0 ? "clean" : $"{problems.Count} problem(s):\n  " + string.Join("\n  ", problems));
        }

        return problems.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    private static async Task<int> CancelAsync(CommandContext context, string regionId, string moveId, CancellationToken ct)
    {
        await using var region = RegionConnection.Open(context.LoadTopology(), regionId, context.Admin("reach the directory"));
        if (context.DryRun)
        {
            var move = await region.GetMoveAsync(moveId, ct) ?? throw GeoCliException.NotFound($"--move: unknown move '{moveId}'.");
            context.Info($"Would cancel {Markup.Escape(moveId)} ({move.Phase}) and delete the rows of {move.Buckets.Count} buckets on {Markup.Escape(move.TargetShard)}.");
            return ExitCodes.Ok;
        }

        context.Admin("cancel a move");
        await context.ConfirmAsync($"Cancel move {moveId} and delete what it copied?", ct);
        var (state, deleted) = await new MoveRunner(region, (_, _, _) => { }).CancelAsync(moveId, ct);
        if (context.Json)
        {
            context.WriteJson(new { moveId, phase = state.Phase.ToString(), deletedOnTarget = deleted });
        }
        else
        {
            context.WriteLine($"Cancelled {moveId}: fences cleared, {deleted} copied rows deleted from {state.TargetShard}.");
        }

        return ExitCodes.Ok;
    }
}
