using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Geo.Cli.CommandLine;
using Geo.Core.Topology;
using Geo.Storage.Migrations;
using Npgsql;
using Spectre.Console;

namespace Geo.Cli.Migrations;

/// <summary>
/// <c>geoctl migrate</c>: applies the embedded schema migrations to every shard and every region's directory database of
/// the topology, or the chosen ones. It is the step a deployment runs as the migration login before the services, which
/// connect without DDL rights, start (docs/operations.md, "Database roles").
/// </summary>
internal static class MigrateCommand
{
    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var region = new Option<string?>("--region") { Description = "Only the shards of this region.", HelpName = "region" };
        var shard = new Option<string?>("--shard") { Description = "Only this shard.", HelpName = "shard" };
        var command = new Command("migrate", "Apply the schema migrations (forward-only, safe to rerun) to every shard and directory database of the topology, or the chosen ones.")
        {
            region, shard,
        };
        command.SetAction((parse, ct) => RunAsync(new CommandContext(parse, host, globals), parse.GetValue(region), parse.GetValue(shard), ct));
        return command;
    }

    private static async Task<int> RunAsync(CommandContext context, string? regionId, string? shardId, CancellationToken ct)
    {
        var targets = SelectTargets(context.LoadTopology(), regionId, shardId);
        if (!context.DryRun)
        {
            context.Admin("migrate shards");
            await context.ConfirmAsync(
                $"Apply up to {ShardMigrator.Embedded.Count} shard and {DirectoryMigrator.Schema.Scripts.Count} directory migration(s) to {targets.Count} database(s): {string.Join(", ", targets.Select(t => t.Shard))}?", ct);
        }

        var outcomes = new List<MigrationOutcome>();
        context.Info($"{(context.DryRun ? "Checking" : "Migrating")} {targets.Count} database(s)...");
        if (context.Stderr.Profile.Capabilities.Interactive)
        {
            await context.Stderr.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .StartAsync(async progress =>
                {
                    var tasks = targets.Select(t => progress.AddTask(Markup.Escape(t.Shard), autoStart: false, maxValue: 1)).ToList();
                    await RunAllAsync(targets, context.DryRun, outcomes, i => tasks[i].StartTask(), (i, outcome) =>
                    {
                        tasks[i].Description = $"{Markup.Escape(targets[i].Shard)} [grey]{Markup.Escape(Describe(outcome))}[/]";
                        tasks[i].Increment(1);
                        tasks[i].StopTask();
                    }, ct);
                });
        }
        else
        {
            // No live display without a terminal: one line per shard, so logs still show how far it got.
            await RunAllAsync(targets, context.DryRun, outcomes, _ => { }, (i, outcome) => context.Info(Markup.Escape($"{targets[i].Shard}: {Describe(outcome)}")), ct);
        }

        if (context.Json)
        {
            context.WriteJson(new MigrationReport(context.DryRun, ShardMigrator.Embedded.Select(m => m.Id).ToArray(), outcomes));
        }
        else
        {
            Render(context.Stdout, context.DryRun, outcomes);
        }

        return outcomes.Any(o => o.Status == MigrationStatus.Failed) ? ExitCodes.Failed
            : outcomes.Any(o => o.Status == MigrationStatus.Unavailable) ? ExitCodes.Unavailable
            : ExitCodes.Ok;
    }

    private static async Task RunAllAsync(
        List<MigrationTarget> targets, bool dryRun, List<MigrationOutcome> outcomes, Action<int> starting, Action<int, MigrationOutcome> finished, CancellationToken ct)
    {
        for (var i = 0; i < targets.Count; i++)
        {
            starting(i);
            var outcome = await RunOneAsync(targets[i], dryRun, ct);
            outcomes.Add(outcome);
            finished(i, outcome);
        }
    }

    private static List<MigrationTarget> SelectTargets(GeoTopology topology, string? regionId, string? shardId)
    {
        if (regionId is not null && !topology.Regions.ContainsKey(regionId))
        {
            throw GeoCliException.NotFound($"--region: unknown region '{regionId}'; the topology has: {string.Join(", ", topology.Regions.Keys)}.");
        }

        var regions = topology.Regions.Values.Where(r => regionId is null || r.Id == regionId).ToList();
        var targets = regions.SelectMany(r => r.Shards.Select(s => new MigrationTarget(r.Id, s.Key, s.Value, ShardMigrator.Schema))).ToList();
        if (shardId is null)
        {
            // Each region's directory database too, named "<region>-directory" in the output.
            return [.. targets, .. regions.Where(r => r.DirectoryDatabase is not null)
                .Select(r => new MigrationTarget(r.Id, r.Id + "-directory", r.DirectoryDatabase!, DirectoryMigrator.Schema))];
        }

        var chosen = targets.Where(t => t.Shard == shardId).ToList();
        return chosen.Count > 0
            ? chosen
            : throw GeoCliException.NotFound(topology.RegionOfShard(shardId) is { } owner
                ? $"--shard: shard '{shardId}' belongs to region '{owner.Id}', not '{regionId}'."
                : $"--shard: unknown shard '{shardId}'; the topology has: {string.Join(", ", targets.Select(t => t.Shard))}.");
    }

    private static async Task<MigrationOutcome> RunOneAsync(MigrationTarget target, bool dryRun, CancellationToken ct)
    {
        var database = new NpgsqlConnectionStringBuilder(target.ConnectionString).Database ?? "";
        var started = Stopwatch.GetTimestamp();
        try
        {
            await using var dataSource = NpgsqlDataSource.Create(target.ConnectionString);
            var migrations = dryRun ? await target.Schema.PendingAsync(dataSource, ct) : await target.Schema.MigrateAsync(dataSource, null, ct);
            var status = migrations.Count == 0 ? MigrationStatus.UpToDate : dryRun ? MigrationStatus.Pending : MigrationStatus.Migrated;
            return new MigrationOutcome(target.Region, target.Shard, database, status, migrations, null, Elapsed(started));
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException or SocketException)
        {
            var status = IsUnavailable(e) ? MigrationStatus.Unavailable : MigrationStatus.Failed;
            return new MigrationOutcome(target.Region, target.Shard, database, status, [], e.Message, Elapsed(started));
        }
    }

    // Could not connect, no such database, login refused, server starting: the shard is unavailable rather than the migration broken.
    private static bool IsUnavailable(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState is PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.InvalidPassword
            or PostgresErrorCodes.InvalidAuthorizationSpecification or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.TooManyConnections,
        NpgsqlException or TimeoutException or SocketException => true,
        _ => false,
    };

    private static long Elapsed(long started) => (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds;

    private static string Describe(MigrationOutcome o) => o.Status switch
    {
        MigrationStatus.Migrated => $"applied {string.Join(", ", o.Migrations)}",
        MigrationStatus.Pending => $"would apply {string.Join(", ", o.Migrations)}",
        MigrationStatus.UpToDate => "up to date",
        MigrationStatus.Unavailable => $"unavailable: {o.Error}",
        _ => $"failed: {o.Error}",
    };

    private static void Render(IAnsiConsole console, bool dryRun, List<MigrationOutcome> outcomes)
    {
        var table = new Table { Title = new TableTitle(dryRun ? "Migrations (dry run: nothing applied)" : "Migrations") }
            .AddColumns("Region", "Shard", "Database", "Status", dryRun ? "Would apply" : "Applied", "ms", "Error");
        foreach (var o in outcomes)
        {
            var status = o.Status switch
            {
                MigrationStatus.Failed => "[red]failed[/]",
                MigrationStatus.Unavailable => "[red]unavailable[/]",
                MigrationStatus.Migrated => "[green]migrated[/]",
                MigrationStatus.Pending => "[yellow]pending[/]",
                _ => "up to date",
            };
            table.AddRow(
                Markup.Escape(o.Region),
                Markup.Escape(o.Shard),
                Markup.Escape(o.Database),
                status,
                Markup.Escape(o.Migrations.Count == 0 ? "-" : string.Join(", ", o.Migrations)),
                o.ElapsedMs.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(o.Error ?? ""));
        }

        console.Write(table);
    }

    private sealed record MigrationTarget(string Region, string Shard, string ConnectionString, SchemaMigrator Schema);

    private sealed record MigrationReport(bool DryRun, IReadOnlyList<string> Embedded, IReadOnlyList<MigrationOutcome> Shards);

    internal sealed record MigrationOutcome(string Region, string Shard, string Database, MigrationStatus Status, IReadOnlyList<string> Migrations, string? Error, long ElapsedMs);

    internal enum MigrationStatus
    {
        UpToDate,
        Pending,
        Migrated,
        Unavailable,
        Failed,
    }
}
