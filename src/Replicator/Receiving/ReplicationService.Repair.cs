using Geo.Core.Tls;
using Geo.ServiceDefaults.Tls;
using Geo.Contracts.Directory;
using Geo.Contracts.Replication;
using Geo.Replicator.Wire;
using Grpc.Core;

namespace Geo.Replicator.Receiving;

// Anti-entropy's reads for a peer (digests and rows of buckets), and the operator's verify and status calls.
internal sealed partial class ReplicationService
{
    [PeerRole(PeerRoles.Replicator, Region = PeerRegion.Remote)]
    public override async Task<BucketDigestsResponse> GetBucketDigests(BucketDigestsRequest request, ServerCallContext context)
    {
        Peer(context);
        var digests = await antiEntropy.LocalDigestsAsync(request.Buckets.Count == 0 ? null : [.. request.Buckets], context.CancellationToken);
        var response = new BucketDigestsResponse();
        response.Digests.Add(digests.Values.Select(d => new Contracts.Replication.BucketDigest { Bucket = d.Bucket, Documents = d.Documents, Counters = d.Counters, Hash = d.Hash }));
        return response;
    }

    [PeerRole(PeerRoles.Replicator, Region = PeerRegion.Remote)]
    public override async Task<BucketRowsResponse> GetBucketRows(BucketRowsRequest request, ServerCallContext context)
    {
        var peer = Peer(context);
        if (request.Bucket is < 0 or >= Core.Placement.Buckets.Count)
        {
            RpcErrors.InvalidArgument($"bucket: {request.Bucket} is not a bucket; use 0 to {Core.Placement.Buckets.Count - 1}.");
        }

        var map = directory.CurrentMap ?? RpcErrors.Unavailable<ShardMapSnapshot>("no shard map from the directory yet; retry shortly.");
        if (request.Offset < 0)
        {
            RpcErrors.InvalidArgument($"offset: {request.Offset} is negative; use 0 for the first page and next_offset after it.");
        }

        var rows = await shards.Store(map.Map.ShardOf(request.Bucket)).ReadBucketRowsAsync(request.Bucket, context.CancellationToken);
        var response = new BucketRowsResponse();
        var bytes = 0;
        var next = request.Offset;
        for (; next < rows.Count; next++)
        {
            // The source filters too: rows of users whose residency excludes the caller never leave this region, and only
            // rows this region originated are offered (the receiver refuses any other origin, as on the stream).
            if (OriginatedHere(rows[next]) && await directory.ResidencyAsync(rows[next].UserId, context.CancellationToken) is { } residency && topology.IsAllowed(residency, peer))
            {
                var wire = ChangeMapping.ToWire(rows[next]);
                var size = wire.CalculateSize();
                if (response.Changes.Count > 0 && bytes + size > options.Value.BatchBytes)
                {
                    break; // The page is full by bytes: the caller asks again from next_offset.
                }

                bytes += size;
                response.Changes.Add(wire);
            }
        }

        response.NextOffset = next;
        response.More = next < rows.Count;
        return response;
    }

    [PeerRole(PeerRoles.Admin)]
    public override async Task<VerifyResponse> Verify(VerifyRequest request, ServerCallContext context)
    {
        var response = new VerifyResponse { Region = site.Value.Region };
        response.Peers.Add(await antiEntropy.RunAsync(request.Buckets.Count == 0 ? null : [.. request.Buckets], request.Repair, context.CancellationToken));
        return response;
    }

    [PeerRole(PeerRoles.Admin)]
    public override Task<StatusResponse> GetStatus(StatusRequest request, ServerCallContext context)
    {
        var now = time.GetUtcNow();
        var response = new StatusResponse { Region = site.Value.Region };
        foreach (var state in peers.All.Values)
        {
            var status = new PeerStatus
            {
                Peer = state.Peer,
                Connected = state.Connected,
                LagSeconds = state.LagSeconds(now),
                PendingChanges = state.Pending.Values.Sum(),
                InboundHeartbeatAgeSeconds = Math.Max(0, (now - state.InboundHeartbeatAt).TotalSeconds),
                LastError = state.LastError,
            };
            status.Acknowledged.Add(state.Acknowledged);
            response.Peers.Add(status);
        }

        return Task.FromResult(response);
    }

    private bool OriginatedHere(Storage.ShardChange row)
        => row.Origin == site.Value.Region && row.Version.Origin == site.Value.Region
            && (row.Kind != Storage.ChangeKind.Counter || row.CounterRegion == site.Value.Region);
}
