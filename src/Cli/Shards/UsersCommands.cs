using System.CommandLine;
using Geo.Cli.CommandLine;
using Geo.Contracts.Directory;
using Geo.Core.Placement;
using Geo.Storage.Reports;
using Npgsql;
using Spectre.Console;

namespace Geo.Cli.Shards;

/// <summary><c>geoctl users get ID</c> and <c>geoctl conflicts list</c>.</summary>
internal static class UsersCommands
{
    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var id = new Argument<string>("id") { Description = "The user id." };
        var region = new Option<string?>("--region") { Description = "Ask this region's directory (default: the first region of the topology).", HelpName = "region" };
        var get = new Command("get", "A user's directory entry, bucket and owning shard in every allowed region.") { id, region };
        get.SetAction((p, ct) => GetAsync(new CommandContext(p, host, globals), p.GetValue(id)!, p.GetValue(region), ct));
        return new Command("users", "Users in the directory.") { get };
    }

    public static Command CreateConflicts(CliHost host, GlobalOptions globals)
    {
        var user = new Option<string?>("--user") { Description = "Only this user's conflicts.", HelpName = "id" };
        var region = new Option<string?>("--region") { Description = "Only this region's shards.", HelpName = "region" };
        var limit = new Option<int>("--limit") { Description = "Most entries per shard, newest first.", DefaultValueFactory = _ => 50 };
        var list = new Command("list", "Conflicts from the shards' conflict logs (winner and loser of concurrent writes).") { user, region, limit };
        list.SetAction((p, ct) => ListConflictsAsync(new CommandContext(p, host, globals), p.GetValue(user), p.GetValue(region), p.GetValue(limit), ct));
        return new Command("conflicts", "Reconciled conflicts.") { list };
    }

    private static async Task<int> GetAsync(CommandContext context, string userId, string? regionId, CancellationToken ct)
    {
        var topology = context.LoadTopology();
        await using var asked = RegionConnection.Open(topology, regionId ?? topology.Regions.Keys.First(), context.Admin("look up a user"));
        // Erased users too: their tombstone is the erase marker, and the table below shows how far each region got.
        var entry = await asked.CallAsync(async o => await asked.Directory.GetUserAsync(new GetUserRequest { UserId = userId, IncludeErased = true }, o), ct);
        var bucket = Buckets.Of(entry.UserId);
        var placements = new List<Placement>();
        foreach (var allowed in topology.AllowedRegions(entry.Residency))
        {
            try
            {
                await using var region = RegionConnection.Open(topology, allowed, context.Admin("look up a user"));
                var map = await region.MapAsync(ct);
                var shard = map.Map.ShardOf(bucket);
                placements.Add(new Placement(allowed, shard, map.Epoch, map.IsFenced(bucket), null,
                    entry.Deleted ? await EraseProgressAsync(region, shard, entry.UserId, ct) : null));
            }
            catch (GeoCliException e)
            {
                placements.Add(new Placement(allowed, null, 0, false, e.Message, entry.Deleted ? "unknown" : null));
            }
        }

        var view = new UserView(entry.UserId, entry.Residency, entry.HomeRegion, $"{entry.Version.Hlc}@{entry.Version.Origin}", bucket, entry.Deleted, placements);
        if (context.Json)
        {
            context.WriteJson(view);
            return ExitCodes.Ok;
        }

        var erased = view.Erased ? ", ERASED (the version is the erase marker's)" : string.Empty;
        context.WriteLine($"user {view.UserId}: residency {view.Residency}, home {view.HomeRegion}, version {view.Version}, bucket {bucket}{erased}");
        var table = new Table().AddColumns("Region", "Shard", "Map epoch", "Fenced", "Erase", "Error");
        foreach (var p in placements)
        {
            table.AddRow(Markup.Escape(p.Region), Markup.Escape(p.Shard ?? "-"), p.Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture), p.Fenced ? "yes" : "no",
                Markup.Escape(p.Erase ?? "-"), Markup.Escape(p.Error ?? ""));
        }

        context.Stdout.Write(table);
        return ExitCodes.Ok;
    }

    private static async Task<int> ListConflictsAsync(CommandContext context, string? userId, string? regionId, int limit, CancellationToken ct)
    {
        var topology = context.LoadTopology();
        if (regionId is not null && !topology.Regions.ContainsKey(regionId))
        {
            throw GeoCliException.NotFound($"--region: unknown region '{regionId}'; the topology has: {string.Join(", ", topology.Regions.Keys)}.");
        }

        var rows = new List<ConflictView>();
        var unavailable = false;
        foreach (var region in topology.Regions.Values.Where(r => regionId is null || r.Id == regionId))
        {
            foreach (var (shard, connectionString) in region.Shards)
            {
                try
                {
                    await using var connection = new NpgsqlConnection(connectionString);
                    await connection.OpenAsync(ct);
                    var found = await ShardReport.ConflictsAsync(connection, userId, limit, ct);
                    rows.AddRange(found.Select(c => new ConflictView(region.Id, shard, c.UserId, c.Collection, c.Key,
                        $"{c.WinnerHlc}@{c.WinnerOrigin}", $"{c.LoserHlc}@{c.LoserOrigin}", c.WinnerBody, c.LoserBody, c.DetectedAt)));
                }
                catch (NpgsqlException e)
                {
                    unavailable = true;
                    context.Info($"[red]{Markup.Escape(shard)}: {Markup.Escape(e.Message)}[/]");
                }
            }
        }

        rows.Sort((a, b) => b.DetectedAt.CompareTo(a.DetectedAt));
        if (context.Json)
        {
            context.WriteJson(rows);
        }
        else
        {
            var table = new Table().AddColumns("Detected", "Region", "Shard", "User", "Document", "Winner", "Loser", "Loser body");
            foreach (var c in rows)
            {
                table.AddRow(c.DetectedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(c.Region), Markup.Escape(c.Shard), Markup.Escape(c.UserId),
                    Markup.Escape($"{c.Collection}/{c.Key}"), Markup.Escape(c.Winner), Markup.Escape(c.Loser), Markup.Escape(c.LoserBody ?? "(deleted)"));
            }

            context.Stdout.Write(table);
        }

        return unavailable ? ExitCodes.Unavailable : ExitCodes.Ok;
    }

    /// <summary>
    /// How far a region got with the user's erase: "done (time)" once the owning shard holds the shard marker (every
    /// row of the user is gone there), "pending" while the region's erase worker has not completed it (the directory
    /// marker has not reached the region yet, or its shard is away), "unknown" when the shard cannot be read.
    /// </summary>
    private static async Task<string> EraseProgressAsync(RegionConnection region, string shard, string userId, CancellationToken ct)
    {
        try
        {
            return await region.Store(shard).EraseStateAsync(userId, ct) is { } state
                ? "done " + state.ErasedAt.ToString("u", System.Globalization.CultureInfo.InvariantCulture)
                : "pending";
        }
        catch (NpgsqlException)
        {
            return "unknown";
        }
    }

    private sealed record Placement(string Region, string? Shard, long Epoch, bool Fenced, string? Error, string? Erase);

    private sealed record UserView(string UserId, string Residency, string HomeRegion, string Version, int Bucket, bool Erased, List<Placement> Regions);

    private sealed record ConflictView(string Region, string Shard, string UserId, string Collection, string Key, string Winner, string Loser,
        string? WinnerBody, string? LoserBody, DateTime DetectedAt);
}
