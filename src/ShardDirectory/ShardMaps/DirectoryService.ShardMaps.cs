using Geo.Core.Tls;
using Geo.ServiceDefaults.Tls;
using Geo.Contracts.Directory;
using Geo.Core.Placement;
using ShardMap = Geo.Contracts.Directory.ShardMap;
using Geo.ShardDirectory.ShardMaps;
using Grpc.Core;

namespace Geo.ShardDirectory.Grpc;

internal sealed partial class DirectoryService
{
    // Past this many missed epochs a watcher gets only the latest map rather than the whole history.
    private const int MaxCatchUpEpochs = 256;

    public override async Task<ShardMap> GetShardMap(GetShardMapRequest request, ServerCallContext context)
    {
        var region = RegionOrOwn(request.Region);
        var map = await maps.GetAsync(region, context.CancellationToken);
        if (map is null)
        {
            RpcErrors.NotFound($"region '{region}' has no shard map in this directory (it serves '{site.RegionId}').");
        }

        return map;
    }

    public override async Task WatchShardMap(WatchShardMapRequest request, IServerStreamWriter<ShardMapEvent> responseStream, ServerCallContext context)
    {
        var region = RegionOrOwn(request.Region);
        var ct = context.CancellationToken;
        if (hub.Current(region) is null && !await maps.RefreshAsync(region, ct))
        {
            RpcErrors.NotFound($"region '{region}' has no shard map in this directory (it serves '{site.RegionId}').");
        }

        // Streams end when the server is about to stop listening (after the shutdown delay), so a graceful shutdown does
        // not wait for watchers and they do not reconnect to a directory that is going away.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, shutdown.Stopping);
        try
        {
            await StreamMapsAsync(region, request.KnownEpoch, responseStream, linked.Token);
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            // The watcher left or the host is stopping.
        }
    }

    private async Task StreamMapsAsync(string region, long knownEpoch, IServerStreamWriter<ShardMapEvent> responseStream, CancellationToken ct)
    {
        var heartbeat = options.Value.HeartbeatInterval;
        var sent = knownEpoch;
        while (!ct.IsCancellationRequested)
        {
            var current = hub.Current(region)!;
            if (current.Epoch > sent)
            {
                // Every epoch in order: the ones in between come from the history table.
                if (sent > 0 && current.Epoch - sent is > 1 and <= MaxCatchUpEpochs)
                {
                    foreach (var missed in await maps.HistoryAsync(region, sent, current.Epoch - 1, ct))
                    {
                        await responseStream.WriteAsync(new ShardMapEvent { Map = missed }, ct);
                    }
                }

                await responseStream.WriteAsync(new ShardMapEvent { Map = current }, ct);
                sent = current.Epoch;
                continue;
            }

            if (!await hub.WaitForNewerAsync(region, sent, heartbeat, ct))
            {
                await responseStream.WriteAsync(new ShardMapEvent
                {
                    Heartbeat = new Heartbeat
                    {
                        Epoch = current.Epoch,
                        IntervalMs = (int)heartbeat.TotalMilliseconds,
                        ServerTimeUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
                    },
                }, ct);
            }
        }
    }

    [PeerRole(PeerRoles.Admin)]
    public override Task<MoveResponse> BeginMove(BeginMoveRequest request, ServerCallContext context)
    {
        var region = RegionOrOwn(request.Region);
        RequireMoveId(request.MoveId);
        if (request.Buckets.Count == 0)
        {
            RpcErrors.InvalidArgument("buckets: empty; list the buckets (0 to 4095) to move.");
        }

        var outOfRange = request.Buckets.FirstOrDefault(b => b is < 0 or >= Buckets.Count, -1);
        if (outOfRange != -1)
        {
            RpcErrors.InvalidArgument($"buckets: {outOfRange} is not a bucket; buckets are 0 to {Buckets.Count - 1}.");
        }

        var buckets = request.Buckets.Distinct().Order().ToArray();
        if (buckets.Length != request.Buckets.Count)
        {
            RpcErrors.InvalidArgument("buckets: listed more than once; list each bucket once.");
        }

        if (!HasShard(site.Topology, region, request.TargetShard) && !HasShard(ReloadTopology(), region, request.TargetShard))
        {
            RpcErrors.InvalidArgument($"target_shard: '{request.TargetShard}' is not a shard of region '{region}' in this directory's topology ({topologyFile.Path}); add it with 'geoctl shards add'.");
        }

        return maps.BeginAsync(region, request.MoveId, request.ExpectedEpoch, buckets, request.TargetShard, context.CancellationToken);
    }

    [PeerRole(PeerRoles.Admin)]
    public override Task<MoveResponse> FenceMove(MoveStepRequest request, ServerCallContext context) => Step(MoveStep.Fence, request, context);

    [PeerRole(PeerRoles.Admin)]
    public override Task<MoveResponse> FlipMove(MoveStepRequest request, ServerCallContext context) => Step(MoveStep.Flip, request, context);

    [PeerRole(PeerRoles.Admin)]
    public override Task<MoveResponse> CompleteMove(MoveStepRequest request, ServerCallContext context) => Step(MoveStep.Complete, request, context);

    [PeerRole(PeerRoles.Admin)]
    public override Task<MoveResponse> CancelMove(MoveStepRequest request, ServerCallContext context) => Step(MoveStep.Cancel, request, context);

    [PeerRole(PeerRoles.Admin)]
    public override Task<MoveResponse> GetMove(GetMoveRequest request, ServerCallContext context)
    {
        RequireMoveId(request.MoveId);
        return maps.GetMoveAsync(request.MoveId, context.CancellationToken);
    }

    private static bool HasShard(Core.Topology.GeoTopology topology, string region, string shard)
        => topology.Regions.TryGetValue(region, out var info) && info.Shards.ContainsKey(shard);

    // A shard added with 'geoctl shards add' since start-up is in the file, not in the topology read at start.
    private Core.Topology.GeoTopology ReloadTopology()
    {
        try
        {
            return topologyFile.Reload();
        }
        catch (Exception e) when (e is Core.Topology.TopologyException or IOException)
        {
            return site.Topology;
        }
    }

    private Task<MoveResponse> Step(MoveStep step, MoveStepRequest request, ServerCallContext context)
    {
        RequireMoveId(request.MoveId);
        return maps.StepAsync(step, request.MoveId, request.ExpectedEpoch, context.CancellationToken);
    }

    private static void RequireMoveId(string moveId)
    {
        if (string.IsNullOrWhiteSpace(moveId) || moveId.Length > 128)
        {
            RpcErrors.InvalidArgument("move_id: missing or longer than 128 characters; choose a unique id such as 'eu-west-0-to-2-0001'.");
        }
    }
}
