using System.CommandLine;
using CultureInfo = System.Globalization.CultureInfo;
using Geo.Cli.CommandLine;
using Geo.Contracts;
using Geo.Contracts.Replication;
using Geo.Core.Tls;
using Geo.Core.Topology;
using Geo.Storage.Reports;
using Grpc.Core;
using Grpc.Net.Client;
using Npgsql;
using Spectre.Console;

namespace Geo.Cli.Replication;

/// <summary>
/// <c>geoctl replication status</c> (lag, pending changes and conflicts per peer) and <c>geoctl verify [--repair]</c>
/// (anti-entropy across regions), through each region's Replicator (its GetStatus and Verify calls).
/// </summary>
internal static class ReplicationCommands
{
    private static readonly TimeSpan StatusTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan VerifyTimeout = TimeSpan.FromMinutes(10);

    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var region = RegionOption();
        var status = new Command("status", "Per region and peer: connected, lag, pending changes, conflicts, last error.") { region };
        status.SetAction((p, ct) => StatusAsync(new CommandContext(p, host, globals), p.GetValue(region), ct));
        return new Command("replication", "Cross-region replication.") { status };
    }

    public static Command CreateVerify(CliHost host, GlobalOptions globals)
    {
        var region = RegionOption();
        var repair = new Option<bool>("--repair") { Description = "Repair divergent buckets (pull the peers' rows, newer version wins), then verify again." };
        var buckets = new Option<int[]>("--bucket") { Description = "Only these buckets (repeatable); default: all 4096.", HelpName = "bucket", AllowMultipleArgumentsPerToken = true };
        var verify = new Command("verify", "Anti-entropy: compare per-bucket digests of every region with its peers; with --repair, fix what differs.") { region, repair, buckets };
        verify.SetAction((p, ct) => VerifyAsync(new CommandContext(p, host, globals), p.GetValue(region), p.GetValue(repair), p.GetValue(buckets) ?? [], ct));
        return verify;
    }

    private static Option<string?> RegionOption() => new("--region") { Description = "Only this region (default: every region of the topology).", HelpName = "region" };

    private static async Task<int> StatusAsync(CommandContext context, string? regionId, CancellationToken ct)
    {
        var topology = context.LoadTopology();
        var admin = context.Admin("read replication status");
        var rows = new List<PeerRow>();
        var failed = false;
        foreach (var region in Regions(topology, regionId))
        {
            var conflicts = await ConflictsByPeerAsync(context, region, ct);
            failed |= conflicts is null;
            try
            {
                var response = await CallAsync(region, admin, StatusTimeout, (client, o) => client.GetStatusAsync(new StatusRequest(), o).ResponseAsync, ct);
                rows.AddRange(response.Peers.OrderBy(p => p.Peer, StringComparer.Ordinal).Select(p => new PeerRow(
                    region.Id, p.Peer, p.Connected, Math.Round(p.LagSeconds, 3), p.PendingChanges, Math.Round(p.InboundHeartbeatAgeSeconds, 3),
                    conflicts?.GetValueOrDefault(p.Peer), string.IsNullOrEmpty(p.LastError) ? null : p.LastError, null)));
            }
            catch (GeoCliException e) when (e.ExitCode == ExitCodes.Unavailable)
            {
                failed = true;
                rows.Add(new PeerRow(region.Id, null, false, null, null, null, null, null, e.Message));
            }
        }

        if (context.Json)
        {
            context.WriteJson(rows);
        }
        else
        {
            var table = new Table().AddColumns("Region", "Peer", "Connected", "Lag s", "Pending", "Heartbeat age s", "Conflicts", "Error");
            foreach (var r in rows)
            {
                table.AddRow(Markup.Escape(r.Region), Markup.Escape(r.Peer ?? "-"), r.Connected ? "yes" : "[red]no[/]", Number(r.LagSeconds), Number(r.PendingChanges),
                    Number(r.InboundHeartbeatAgeSeconds), Number(r.Conflicts), Markup.Escape(r.Unreachable ?? r.LastError ?? ""));
            }

            context.Stdout.Write(table);
        }

        return failed ? ExitCodes.Unavailable : ExitCodes.Ok;
    }

    private static async Task<int> VerifyAsync(CommandContext context, string? regionId, bool repair, int[] buckets, CancellationToken ct)
    {
        var topology = context.LoadTopology();
        var bad = buckets.FirstOrDefault(b => b is < 0 or >= Core.Placement.Buckets.Count, -1);
        if (bad != -1)
        {
            throw GeoCliException.Usage($"--bucket: {bad} is not a bucket; buckets are 0 to {Core.Placement.Buckets.Count - 1}.");
        }

        if (repair)
        {
            if (context.DryRun)
            {
                context.Info("--dry-run: verifying only; nothing is repaired.");
                repair = false;
            }
            else
            {
                context.Admin("repair divergent buckets");
                await context.ConfirmAsync($"Repair divergent buckets of {regionId ?? "every region"} from their peers?", ct);
            }
        }

        var admin = context.Admin("verify replicas");
        var rows = new List<VerifyRow>();
        foreach (var region in Regions(topology, regionId))
        {
            rows.AddRange(await VerifyRegionAsync(context, region, admin, buckets, repair, ct));
        }

        if (repair)
        {
            // Show what is left, not what was fixed: a second pass that only compares.
            var after = new List<VerifyRow>();
            foreach (var region in Regions(topology, regionId))
            {
                after.AddRange(await VerifyRegionAsync(context, region, admin, buckets, repair: false, ct));
            }

            rows = [.. rows.Zip(after, (before, now) => now with { Repaired = before.RowsApplied, RowsApplied = before.RowsApplied })];
        }

        if (context.Json)
        {
            context.WriteJson(rows);
        }
        else
        {
            var table = new Table().AddColumns("Region", "Peer", "Buckets compared", "Divergent", "Rows repaired", "Error");
            foreach (var r in rows)
            {
                var divergent = r.DivergentBuckets.Length == 0 ? "[green]0[/]" : $"[red]{r.DivergentBuckets.Length}[/] ({string.Join(", ", r.DivergentBuckets.Take(8))}{(r.DivergentBuckets.Length > 8 ? ", ..." : "")})";
                table.AddRow(Markup.Escape(r.Region), Markup.Escape(r.Peer ?? "-"), Number<int>(r.BucketsCompared), divergent, Number(r.Repaired), Markup.Escape(r.Error ?? ""));
            }

            context.Stdout.Write(table);
        }

        return rows.Any(r => r.Error is not null) ? ExitCodes.Unavailable
            : rows.Any(r => r.DivergentBuckets.Length > 0) ? ExitCodes.Failed
            : ExitCodes.Ok;
    }

    private static async Task<List<VerifyRow>> VerifyRegionAsync(CommandContext context, RegionInfo region, TlsCredentials admin, int[] buckets, bool repair, CancellationToken ct)
    {
        context.Info($"{Markup.Escape(region.Id)}: {(repair ? "repairing" : "comparing")} bucket digests with its peers");
        try
        {
            var request = new VerifyRequest { Repair = repair, Buckets = { buckets } };
            var response = await CallAsync(region, admin, VerifyTimeout, (client, o) => client.VerifyAsync(request, o).ResponseAsync, ct);
            return [.. response.Peers.OrderBy(p => p.Peer, StringComparer.Ordinal).Select(p => new VerifyRow(region.Id, p.Peer, p.BucketsCompared, [.. p.DivergentBuckets],
                p.RowsApplied, null, string.IsNullOrEmpty(p.Error) ? null : p.Error))];
        }
        catch (GeoCliException e) when (e.ExitCode == ExitCodes.Unavailable)
        {
            return [new VerifyRow(region.Id, null, 0, [], 0, null, e.Message)];
        }
    }

    /// <summary>
    /// Calls a region's replicator with the admin certificate (its GetStatus and Verify calls need the admin role), with
    /// a deadline, again when a call never reached it (<see cref="UnreachedRetry"/>; both calls are safe to repeat: a
    /// status read, and a verify whose repairs apply by last writer wins).
    /// </summary>
    private static Task<T> CallAsync<T>(RegionInfo region, TlsCredentials admin, TimeSpan timeout,
        Func<Contracts.Replication.Replication.ReplicationClient, CallOptions, Task<T>> call, CancellationToken ct)
        => UnreachedRetry.RunAsync(() => CallOnceAsync(region, admin, timeout, call, ct), ct);

    private static async Task<T> CallOnceAsync<T>(RegionInfo region, TlsCredentials admin, TimeSpan timeout,
        Func<Contracts.Replication.Replication.ReplicationClient, CallOptions, Task<T>> call, CancellationToken ct)
    {
        using var channel = GrpcChannel.ForAddress(region.Replicator, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { SslOptions = admin.ClientOptions(), ConnectTimeout = UnreachedRetry.ConnectTimeout },
            DisposeHttpClient = true,
        });
        var client = new Contracts.Replication.Replication.ReplicationClient(channel);
        try
        {
            return await call(client, new CallOptions(deadline: TimeProvider.System.Deadline(timeout), cancellationToken: ct));
        }
        catch (RpcException e) when (GeoCliException.IsTlsRefusal(e))
        {
            throw GeoCliException.Refused($"The TLS handshake with the replicator of {region.Id} failed: {e.Status.Detail} Use the admin certificate and CA of this deployment (--pki).");
        }
        catch (RpcException e) when (GeoCliException.IsUnreachable(e) || e.StatusCode is StatusCode.Internal)
        {
            throw new GeoCliException(ExitCodes.Unavailable, $"The replicator of {region.Id} at {region.Replicator} did not answer: {e.Status.DebugException?.GetBaseException().Message ?? e.Status.Detail}", e);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            throw GeoCliException.Refused($"The replicator of {region.Id} refused geoctl's certificate: {e.Status.Detail} Use the admin certificate of this deployment's CA (--pki).");
        }
    }

    private static IEnumerable<RegionInfo> Regions(GeoTopology topology, string? regionId)
    {
        if (regionId is null)
        {
            return topology.Regions.Values;
        }

        return topology.Regions.TryGetValue(regionId, out var region)
            ? [region]
            : throw GeoCliException.NotFound($"--region: unknown region '{regionId}'; the topology has: {string.Join(", ", topology.Regions.Keys)}.");
    }

    /// <summary>Conflict-log entries of the region's shards per other region; null when a shard could not be read.</summary>
    private static async Task<Dictionary<string, long>?> ConflictsByPeerAsync(CommandContext context, RegionInfo region, CancellationToken ct)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (shard, connectionString) in region.Shards)
        {
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync(ct);
                foreach (var (peer, count) in await ShardReport.ConflictsByPeerAsync(connection, region.Id, ct))
                {
                    counts[peer] = counts.GetValueOrDefault(peer) + count;
                }
            }
            catch (NpgsqlException e)
            {
                context.Info($"[red]{Markup.Escape(shard)}: {Markup.Escape(e.Message)}[/]");
                return null;
            }
        }

        return counts;
    }

    private static string Number<T>(T? value)
        where T : struct, IFormattable => value is { } v ? v.ToString(null, CultureInfo.InvariantCulture) : "-";

    private sealed record PeerRow(string Region, string? Peer, bool Connected, double? LagSeconds, long? PendingChanges, double? InboundHeartbeatAgeSeconds,
        long? Conflicts, string? LastError, string? Unreachable);

    private sealed record VerifyRow(string Region, string? Peer, int BucketsCompared, int[] DivergentBuckets, int RowsApplied, int? Repaired, string? Error);
}
