using Geo.Contracts;
using Geo.Core.Tls;
using Geo.ServiceDefaults.Tls;
using Geo.Contracts.Directory;
using Geo.Contracts.Replication;
using Geo.Core.Clock;
using Geo.Core.Topology;
using Geo.Replicator.AntiEntropy;
using Geo.Replicator.Directory;
using Geo.Replicator.Hosting;
using Geo.Replicator.Sending;
using Geo.Replicator.Sharding;
using Geo.Replicator.Telemetry;
using Geo.Replicator.Wire;
using Geo.ServiceDefaults.Lifecycle;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Receiving;

/// <summary>The gRPC face of the replicator: the inbound replication stream, anti-entropy, verify and status.</summary>
internal sealed partial class ReplicationService(BatchApplier applier, DirectoryLink directory, LocalShards shards,
    GeoTopology topology, IOptions<GeoSiteOptions> site, IOptions<ReplicatorOptions> options, PeerStates peers, AntiEntropyRunner antiEntropy, HybridLogicalClock clock,
    ReplicatorMetrics metrics, KnownKinds kinds, TimeProvider time, ILogger<ReplicationService> logger) : Replication.ReplicationBase
{
    // A region sends one stream per shard and one for its directory entries.
    private const int MaxStreamsPerSession = 256;

    // Batches of one stream read and not yet applied: the largest sender window (ReplicatorOptions.Window).
    private const int MaxQueuedBatches = 64;

    [PeerRole(PeerRoles.Replicator, Region = PeerRegion.Remote)]
    public override async Task Replicate(IAsyncStreamReader<ReplicationMessage> requestStream, IServerStreamWriter<ReplicationReply> responseStream, ServerCallContext context)
    {
        var peer = Peer(context);
        // The stream ends when this process is about to stop listening (graceful shutdown); the peer resumes elsewhere
        // or later from its checkpoint, and the server does not wait out its drain timeout for a stream that never ends.
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken,
            context.GetHttpContext().RequestServices.GetRequiredService<GracefulShutdown>().Stopping);
        var ct = stream.Token;
        var state = peers.All[peer];
        try
        {
            await ReceiveAllAsync(peer, requestStream, responseStream, state, ct);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException)
        {
            // The peer went away or reset the stream (reconnect, partition, shutdown); it resumes from its checkpoint.
            LogStreamEnded(logger, peer, ex.Message);
        }
    }

    // Each shard stream's batches are applied in order by a worker of the stream's own, the streams side by side: a stream
    // that waits (a fenced bucket, a slow shard) holds no other, and two source shards' batches apply concurrently (each
    // apply locks its users in lock-id order, as applies from two peers always did). The directory's entries are applied
    // here, in wire order, before any shard batch read after them. Acks and heartbeat echoes share the reply stream one
    // at a time. A worker's failure ends the call; so does the peer's, after the workers stopped.
    private async Task ReceiveAllAsync(string peer, IAsyncStreamReader<ReplicationMessage> requestStream, IServerStreamWriter<ReplicationReply> responseStream,
        PeerState state, CancellationToken ct)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var replies = new SemaphoreSlim(1, 1);
        async Task ReplyAsync(ReplicationReply reply)
        {
            await replies.WaitAsync(session.Token);
            try
            {
                await responseStream.WriteAsync(reply, session.Token);
            }
            finally
            {
                replies.Release();
            }
        }

        var streams = new Dictionary<string, (Channel<ChangeBatch> Queue, Task Worker)>(StringComparer.Ordinal);
        long? directoryContiguous = null;
        Exception? readFailure = null;
        try
        {
            await foreach (var message in requestStream.ReadAllAsync(session.Token))
            {
                switch (message.KindCase)
                {
                    case ReplicationMessage.KindOneofCase.Heartbeat:
                        RequireCompatible(peer, message.Heartbeat);
                        state.HeartbeatReceived(time.GetUtcNow());
                        clock.TryObserve(new HlcTimestamp(message.Heartbeat.Hlc));
                        var echo = new HeartbeatEcho
                        {
                            Id = message.Heartbeat.Id, SentAtUnixMs = message.Heartbeat.SentAtUnixMs, ReceiverTimeUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds(),
                            ProtocolVersion = Contracts.ProtocolVersions.Replication, MinProtocolVersion = Contracts.ProtocolVersions.MinimumReplication,
                        };
                        echo.Kinds.Add(kinds.All);
                        await ReplyAsync(new ReplicationReply { Heartbeat = echo });
                        break;
                    case ReplicationMessage.KindOneofCase.Batch:
                        var batch = message.Batch;
                        if (string.IsNullOrEmpty(batch.Stream) || batch.LastSeq < batch.AfterSeq)
                        {
                            RpcErrors.InvalidArgument($"batch: stream '{batch.Stream}' covers ({batch.AfterSeq}, {batch.LastSeq}]; name the stream and send last_seq >= after_seq.");
                        }

                        if (batch.Stream == DirectoryChangeStream.StreamName)
                        {
                            // In wire order, as before any shard batch read after it: a user's entry precedes its data.
                            (var ack, directoryContiguous, _) = await ReceiveAsync(peer, batch, directoryContiguous, session.Token); // no cache updates
                            await ReplyAsync(new ReplicationReply { Ack = ack });
                            break;
                        }

                        if (!streams.TryGetValue(batch.Stream, out var stream))
                        {
                            if (streams.Count >= MaxStreamsPerSession)
                            {
                                RpcErrors.InvalidArgument($"batch: more than {MaxStreamsPerSession} streams in one session; a region sends one per shard and one for the directory.");
                            }

                            // As deep as the largest sender window: a sender that keeps to its window never blocks this loop.
                            var queue = Channel.CreateBounded<ChangeBatch>(new BoundedChannelOptions(MaxQueuedBatches) { SingleReader = true, SingleWriter = true });
                            streams[batch.Stream] = stream = (queue, ApplyStreamAsync(peer, queue.Reader, ReplyAsync, session));
                        }

                        await stream.Queue.Writer.WriteAsync(batch, session.Token);
                        break;
                    default:
                        RpcErrors.InvalidArgument("message: empty; send a batch or a heartbeat.");
                        break;
                }
            }
        }
        catch (Exception ex)
        {
            readFailure = ex;
            await session.CancelAsync(); // No ack can reach the peer now: stop applying; it resends from its checkpoint.
        }

        foreach (var stream in streams.Values)
        {
            stream.Queue.Writer.TryComplete();
        }

        var workers = streams.Values.Select(s => s.Worker).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (workers.FirstOrDefault(w => w.IsFaulted && w.Exception!.InnerException is not OperationCanceledException) is { } failed)
        {
            ExceptionDispatchInfo.Throw(failed.Exception!.InnerException!); // What made the worker stop, not the cancellation it caused.
        }

        if (readFailure is not null)
        {
            ExceptionDispatchInfo.Throw(readFailure);
        }
    }

    private async Task ApplyStreamAsync(string peer, ChannelReader<ChangeBatch> queue, Func<ReplicationReply, Task> reply, CancellationTokenSource session)
    {
        await Task.Yield(); // the reading loop goes on
        long? contiguous = null; // everything up to it is applied or durably refused in this session
        // A batch's ack waits for its cache invalidations (a reader at this region must not find the old value cached
        // once the sender counts the change as delivered), but the next batch need not: its database work overlaps the
        // invalidations of the one before. Acks stay in batch order: each waits for the one before it.
        var acked = Task.CompletedTask;
        var invalidating = Task.CompletedTask; // the invalidations of the batches applied and not yet acknowledged
        try
        {
            await foreach (var batch in queue.ReadAllAsync(session.Token))
            {
                if (acked.IsFaulted || acked.IsCanceled)
                {
                    await acked; // the reply stream failed: stop here
                }

                (var ack, contiguous, var cacheUpdated) = await ReceiveAsync(peer, batch, contiguous, session.Token);
                invalidating = invalidating.IsCompleted ? cacheUpdated : Task.WhenAll(invalidating, cacheUpdated);
                acked = AckAfterAsync(acked, cacheUpdated, ack);
            }

            await acked;
        }
        catch
        {
            // A batch committed here and not yet acknowledged is sent again and then skipped as already applied, so its
            // invalidations would never be sent again: let them finish (bounded by the cache's timeouts) before the
            // session's cancellation can cut them short.
            await invalidating.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await session.CancelAsync();
            await acked.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing); // the session's failure is what is thrown
            throw;
        }

        async Task AckAfterAsync(Task before, Task cacheUpdated, Ack ack)
        {
            await before;
            await cacheUpdated;
            await reply(new ReplicationReply { Ack = ack });
        }
    }

    /// <summary>
    /// The calling peer's region, from its verified certificate (the interceptor already required a replicator of
    /// another region); a region this topology does not list is refused.
    /// </summary>
    private string Peer(ServerCallContext context)
    {
        var caller = PeerAccess.Caller(context);
        if (!peers.All.ContainsKey(caller.Region))
        {
            metrics.PeerRefused(caller.Region);
            throw new RpcException(new Status(StatusCode.PermissionDenied, $"Replication peer refused: {caller} is not a peer region of this topology."));
        }

        return caller.Region;
    }

    // Returns the ack, what the stream's contiguous position becomes, and the cache invalidations the ack must wait for.
    private async Task<(Ack Ack, long? Contiguous, Task CacheUpdated)> ReceiveAsync(string peer, ChangeBatch batch, long? contiguous, CancellationToken ct)
    {
        var done = contiguous ?? batch.AfterSeq;
        var ack = new Ack { Stream = batch.Stream, BatchLastSeq = batch.LastSeq, AppliedThrough = done };
        if (batch.AfterSeq > done)
        {
            ack.Rewind = true; // An earlier batch stopped short: this one is not contiguous, the sender must resend.
            return (ack, contiguous, Task.CompletedTask);
        }

        if (batch.LastSeq <= done)
        {
            return (ack, contiguous, Task.CompletedTask); // Already applied in this session.
        }

        var cacheUpdated = Task.CompletedTask;
        if (batch.Stream == DirectoryChangeStream.StreamName)
        {
            await ReceiveEntriesAsync(peer, batch, done, ack, ct);
        }
        else
        {
            var changes = new List<Storage.ShardChange>(batch.Changes.Count);
            var malformed = 0;
            var last = batch.LastSeq;
            foreach (var wire in batch.Changes)
            {
                if (wire.Seq <= done || wire.Seq > batch.LastSeq)
                {
                    continue;
                }

                if (!kinds.Knows(wire.Kind))
                {
                    // A kind this binary does not apply (a newer sender): never acknowledged, so never lost. The stream
                    // stops before it; the sender keeps it and sends it again until this region is upgraded.
                    last = wire.Seq - 1;
                    ack.Unsupported = 1;
                    ack.HeldReason = $"{site.Value.Region} does not know change kind {KnownKinds.Name(wire.Kind)} (seq {wire.Seq} of stream {batch.Stream}); held until it runs a binary that does";
                    metrics.Unsupported(peer, KnownKinds.Name(wire.Kind));
                    LogUnsupported(logger, peer, KnownKinds.Name(wire.Kind), batch.Stream, wire.Seq);
                    break;
                }

                if (ChangeMapping.FromWire(wire) is { } change)
                {
                    changes.Add(change);
                }
                else
                {
                    malformed++;
                }
            }

            metrics.Refused(peer, "malformed", malformed);
            using var applying = ReplicationTracing.StartApply(peer, batch);
            var result = await applier.ApplyAsync(peer, batch.Stream, changes, done, last, ct);
            ack.AppliedThrough = result.AppliedThrough;
            ack.Rewind = result.Stopped || ack.Unsupported > 0;
            ack.Applied = result.Applied;
            ack.Refused = result.Refused + malformed;
            ack.Quarantined = result.Quarantined;
            cacheUpdated = result.CacheUpdated;
        }

        return (ack, ack.AppliedThrough, cacheUpdated);
    }

    private async Task ReceiveEntriesAsync(string peer, ChangeBatch batch, long done, Ack ack, CancellationToken ct)
    {
        var entries = batch.Entries.Where(e => e.Seq > done && e.Seq <= batch.LastSeq).ToList();
        var forged = entries.Where(e => e.Version?.Origin != peer || !topology.IsKnownResidency(e.Residency)).ToList();
        if (forged.Count > 0)
        {
            metrics.Refused(peer, "origin", forged.Count);
            LogForgedEntries(logger, peer, forged.Count);
        }

        var valid = entries.Except(forged).ToList();
        ack.AppliedThrough = batch.LastSeq;
        ack.Refused = forged.Count;
        if (valid.Count > 0)
        {
            var request = new ApplyUserEntriesRequest { ProtocolVersion = Contracts.ProtocolVersions.Directory };
            request.Entries.Add(valid.Select(ChangeMapping.FromWire));
            var response = await directory.Grpc.ApplyUserEntriesAsync(request, deadline: time.Deadline(options.Value.DirectoryApplyTimeout), cancellationToken: ct);
            if (response.Quarantined.Count > 0)
            {
                var first = response.Quarantined.Min();
                ack.AppliedThrough = valid[first].Seq - 1;
                ack.Rewind = true;
                ack.Quarantined = response.Quarantined.Count;
                metrics.Quarantined(peer, response.Quarantined.Count);
                LogEntriesQuarantined(logger, peer, response.Quarantined.Count);
            }

            if (response.Refused.Count > 0)
            {
                // Durably refused (a residency change): acknowledged past, never retried.
                metrics.Refused(peer, "residency-change", response.Refused.Count);
                LogResidencyChangeRefused(logger, peer, response.Refused.Count);
            }

            for (var i = 0; i < valid.Count; i++)
            {
                // Remembered only when the directory stored it: a refused or older entry says nothing about the user.
                if (valid[i].Seq <= ack.AppliedThrough && i < response.Applied.Count && response.Applied[i])
                {
                    directory.Remember(valid[i].UserId, valid[i].Residency);
                }
            }

            ack.Applied = response.Applied.Count(a => a);
            ack.Refused += response.Refused.Count;
            metrics.Applied(peer, ack.Applied);
        }
    }

    /// <summary>Ends the stream when the sender's protocol window does not meet this binary's (docs/operations.md "Upgrades").</summary>
    private void RequireCompatible(string peer, Contracts.Replication.Heartbeat heartbeat)
    {
        if (!KnownKinds.Compatible(heartbeat.ProtocolVersion, heartbeat.MinProtocolVersion))
        {
            metrics.ProtocolRefused(peer);
            var message = $"Replication protocol of {peer} (version {Contracts.ProtocolVersions.Effective(heartbeat.ProtocolVersion)}, down to {Contracts.ProtocolVersions.Effective(heartbeat.MinProtocolVersion)}) is outside this binary's window ({Contracts.ProtocolVersions.Replication} down to {Contracts.ProtocolVersions.MinimumReplication}); upgrade one step at a time.";
            LogProtocolMismatch(logger, peer, message);
            throw new RpcException(new Status(StatusCode.FailedPrecondition, message));
        }
    }

    [LoggerMessage(EventId = EventIds.UnsupportedChange, Level = LogLevel.Error,
        Message = "Holding the stream {Stream} from {Peer} at seq {Seq}: change kind {Kind} is unknown to this binary; nothing at or after it is acknowledged, the sender keeps it until this region is upgraded")]
    private static partial void LogUnsupportedCore(ILogger logger, string peer, string kind, string stream, long seq);

    // One line per held position, not one per resend (every RewindDelay): the counter counts every resend.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Peer, string Stream), long> _heldAt = new();

    private void LogUnsupported(ILogger log, string peer, string kind, string stream, long seq)
    {
        if (_heldAt.TryGetValue((peer, stream), out var at) && at == seq)
        {
            return;
        }

        _heldAt[(peer, stream)] = seq;
        LogUnsupportedCore(log, peer, kind, stream, seq);
    }

    [LoggerMessage(EventId = EventIds.ProtocolMismatch, Level = LogLevel.Error, Message = "Refused the replication stream of {Peer}: {Reason}")]
    private static partial void LogProtocolMismatch(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = EventIds.InboundEnded, Level = LogLevel.Information, Message = "Inbound replication stream from {Peer} ended: {Reason}")]
    private static partial void LogStreamEnded(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = EventIds.ForgedEntries, Level = LogLevel.Warning, Message = "Refused {Count} directory entries from {Peer}: origin is not the sending region or residency unknown")]
    private static partial void LogForgedEntries(ILogger logger, string peer, int count);

    [LoggerMessage(EventId = EventIds.ResidencyChangeRefused, Level = LogLevel.Warning, Message = "Refused {Count} directory entries from {Peer}: they would change a user's residency")]
    private static partial void LogResidencyChangeRefused(ILogger logger, string peer, int count);

    [LoggerMessage(EventId = EventIds.EntriesQuarantined, Level = LogLevel.Warning, Message = "{Count} directory entries from {Peer} are beyond the clock-skew bound; not acknowledged")]
    private static partial void LogEntriesQuarantined(ILogger logger, string peer, int count);
}
