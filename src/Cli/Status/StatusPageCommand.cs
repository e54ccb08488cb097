using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Geo.Cli.Checkpoints;
using Geo.Cli.CommandLine;
using Geo.Core.Topology;
using Geo.Storage.Reports;
using Npgsql;
using CultureInfo = System.Globalization.CultureInfo;

namespace Geo.Cli.Status;

/// <summary>
/// <c>geoctl status-page</c>: serves one HTML page over HTTP (for people, refreshing itself) with the whole deployment
/// at a glance: every region's services and their health, the replication lag and pending matrix, shard maps (buckets
/// per shard, fenced buckets, epoch) and moves, recent conflicts, and the decision checkpoints with their current
/// values. Every <c>--refresh</c> seconds it reads everything again; the checkpoints compare the last two readings.
/// </summary>
internal static class StatusPageCommand
{
    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var listen = new Option<string>("--listen") { Description = "Address to serve the page on.", DefaultValueFactory = _ => "http://127.0.0.1:8099/", HelpName = "url" };
        var refresh = new Option<double>("--refresh") { Description = "Seconds between readings (and the page's own refresh).", DefaultValueFactory = _ => 5, HelpName = "seconds" };
        var command = new Command("status-page", "Serve a status page: regions and health, replication lag and pending, shard maps and moves, recent conflicts, decision checkpoints.") { listen, refresh };
        command.SetAction((p, ct) => RunAsync(new CommandContext(p, host, globals), p.GetValue(listen)!, p.GetValue(refresh), ct));
        return command;
    }

    private static async Task<int> RunAsync(CommandContext context, string listen, double refresh, CancellationToken ct)
    {
        if (refresh is < 1 or > 600)
        {
            throw GeoCliException.Usage("--refresh: give a number of seconds between 1 and 600.");
        }

        var topology = context.LoadTopology();
        var prefix = listen.EndsWith('/') ? listen : listen + "/";
        if (!Uri.TryCreate(prefix, UriKind.Absolute, out var address) || address.Scheme != Uri.UriSchemeHttp)
        {
            throw GeoCliException.Usage($"--listen: give an http:// address, e.g. http://127.0.0.1:8099/ (not '{listen}').");
        }

        var page = "<!doctype html><html><head><meta http-equiv=\"refresh\" content=\"1\"><title>Geo status</title></head><body><p>Reading the deployment…</p></body></html>";

        // Kestrel, not HttpListener: the managed HttpListener on Linux can throw from Start() when a client connects
        // while it starts (its accept loop runs before its own state exists), which a browser or probe waiting for
        // the page does.
        // The empty builder reads no configuration file or environment of its own: only the address given here.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().UseUrls(address.GetLeftPart(UriPartial.Authority));
        await using var app = builder.Build();
        app.Run(request => Results.Content(Volatile.Read(ref page), "text/html; charset=utf-8").ExecuteAsync(request));
        try
        {
            await app.StartAsync(ct);
        }
        catch (IOException e)
        {
            throw GeoCliException.Usage($"--listen: cannot serve on {prefix}: {e.Message}");
        }

        context.Info($"Status page on {Spectre.Console.Markup.Escape(prefix)} (Ctrl-C stops it).");
        using var http = CheckpointsCommand.ScrapeClient(context, "read the services' health and metrics");
        var regions = topology.Regions.Values.OrderBy(r => r.Id, StringComparer.Ordinal).ToList();
        var reader = Task.Run(async () =>
        {
            CheckpointsCommand.Readings? previous = null;
            var previousAt = TimeProvider.System.GetUtcNow();
            while (!ct.IsCancellationRequested)
            {
                var at = TimeProvider.System.GetUtcNow();
                var readings = await CheckpointsCommand.ReadAllAsync(http, regions, ct);
                var health = await HealthAsync(http, regions, ct);
                var directory = await DirectoryAsync(regions, ct);
                var conflicts = await ConflictsAsync(regions, ct);
                var report = previous is null ? null : CheckpointEvaluator.Evaluate(
                    CheckpointsCommand.Observe(regions, previous, readings, (at - previousAt).TotalSeconds), new CheckpointThresholds(), (at - previousAt).TotalSeconds);
                Volatile.Write(ref page, StatusPage.Render(regions, health, readings, directory, conflicts, report, at, refresh));
                (previous, previousAt) = (readings, at);
                await Task.Delay(TimeSpan.FromSeconds(refresh), ct);
            }
        }, ct);

        try
        {
            await reader;
        }
        catch (OperationCanceledException)
        {
        }

        await app.StopAsync(CancellationToken.None);
        return ExitCodes.Ok;
    }

    /// <summary>Readiness of every service: (region, service) → ready.</summary>
    private static async Task<Dictionary<(string Region, string Service), bool>> HealthAsync(HttpClient http, IReadOnlyList<RegionInfo> regions, CancellationToken ct)
    {
        var probes = new List<(string, string, Task<bool>)>();
        foreach (var r in regions)
        {
            probes.Add((r.Id, "edge", ReadyAsync(http, r.Edge, false, ct)));
            probes.AddRange(r.Api.Select((api, i) => (r.Id, r.Api.Length > 1 ? $"api {i + 1}" : "api", ReadyAsync(http, api, false, ct))));
            probes.Add((r.Id, "directory", ReadyAsync(http, r.Directory, true, ct)));
            probes.Add((r.Id, "replicator", ReadyAsync(http, r.Replicator, true, ct)));
        }

        await Task.WhenAll(probes.Select(p => p.Item3));
        return probes.ToDictionary(p => (p.Item1, p.Item2), p => p.Item3.Result);
    }

    private static Task<bool> ReadyAsync(HttpClient http, Uri service, bool http2, CancellationToken ct) => Geo.Dev.Readiness.IsReadyAsync(http, service, http2, ct);

    internal sealed record DirectoryView(ShardMapSummary? Map, IReadOnlyList<MoveSummary> Moves, string? Error);

    private static async Task<Dictionary<string, DirectoryView>> DirectoryAsync(IReadOnlyList<RegionInfo> regions, CancellationToken ct)
    {
        var views = new Dictionary<string, DirectoryView>(StringComparer.Ordinal);
        foreach (var r in regions.Where(r => r.DirectoryDatabase is not null))
        {
            try
            {
                await using var connection = new NpgsqlConnection(r.DirectoryDatabase);
                await connection.OpenAsync(ct);
                var map = await DirectoryReport.ShardMapAsync(connection, r.Id, ct);
                var moves = await DirectoryReport.MovesAsync(connection, r.Id, 10, ct);
                views[r.Id] = new DirectoryView(map, moves, null);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                views[r.Id] = new DirectoryView(null, [], e.Message);
            }
        }

        return views;
    }

    internal sealed record ConflictView(string Shard, string UserId, string Collection, string Key, string Winner, string Loser, DateTime DetectedAt);

    private static async Task<List<ConflictView>> ConflictsAsync(IReadOnlyList<RegionInfo> regions, CancellationToken ct)
    {
        var conflicts = new List<ConflictView>();
        foreach (var (shard, cs) in regions.SelectMany(r => r.Shards))
        {
            try
            {
                await using var connection = new NpgsqlConnection(cs);
                await connection.OpenAsync(ct);
                conflicts.AddRange((await ShardReport.RecentConflictsAsync(connection, 5, ct))
                    .Select(c => new ConflictView(shard, c.UserId, c.Collection, c.Key, c.WinnerOrigin, c.LoserOrigin, c.DetectedAt)));
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // An unreachable shard shows in the checkpoints' "not read" list.
            }
        }

        return [.. conflicts.OrderByDescending(c => c.DetectedAt).Take(10)];
    }

    internal static string Number(double? value) => value is { } v ? v.ToString("0.###", CultureInfo.InvariantCulture) : "-";
}
