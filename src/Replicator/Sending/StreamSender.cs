using Geo.Contracts.Replication;
using Geo.Core.Signals;
using Geo.Replicator.Telemetry;

namespace Geo.Replicator.Sending;

/// <summary>
/// Ships one stream to one peer within one session: reads after what was sent, keeps at most
/// <see cref="Hosting.ReplicatorOptions.Window"/> batches unacknowledged (bounded memory when the peer is slow or gone),
/// advances the checkpoint on acknowledgement (written to the shard at most every
/// <see cref="Hosting.ReplicatorOptions.CheckpointInterval"/>, and once more when the session ends), and rewinds to it
/// when the receiver asks.
/// At the end of the log it sends one batch and waits for its acknowledgement before reading again: the writes that
/// commit during that round trip go out together (batching under load, one change per batch when idle), where a full
/// window of one-change batches would cost the receiver a transaction each.
/// </summary>
internal sealed class StreamSender
{
    private static readonly TimeSpan FinalPersistTimeout = TimeSpan.FromSeconds(2);
    private readonly IChangeStream _stream;
    private readonly string _peer;
    private readonly Hosting.ReplicatorOptions _options;
    private readonly TimeProvider _time;
    private readonly PeerState _state;
    private readonly Wakeup _wake = new();
    private readonly Wakeup _acked = new();
    private readonly Lock _gate = new();
    private readonly Queue<long> _inflight = new();
    private long _durable;
    private long _sent;
    private bool _rewind;
    private bool _atTail;
    private DateTimeOffset? _tailAt;
    private long _persisted;

    public StreamSender(IChangeStream stream, string peer, long checkpoint, Hosting.ReplicatorOptions options, TimeProvider time, PeerState state)
    {
        _stream = stream;
        _peer = peer;
        _options = options;
        _time = time;
        _state = state;
        _durable = _sent = _persisted = checkpoint;
        state.Acknowledged[stream.Name] = checkpoint;
    }

    public string Name => _stream.Name;

    /// <summary>What a heartbeat needs: the time before which everything was sent (null if unknown), and what was sent.</summary>
    public (DateTimeOffset? TailAt, long Sent) Snapshot()
    {
        lock (_gate)
        {
            return (_tailAt, _sent);
        }
    }

    public long Durable
    {
        get
        {
            lock (_gate)
            {
                return _durable;
            }
        }
    }

    public async Task RunAsync(Func<ReplicationMessage, CancellationToken, Task> write, CancellationToken ct)
    {
        using var pushed = _stream.Signal?.Subscribe(_wake.Set);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            bool rewind, full;
            long after;
            lock (_gate)
            {
                rewind = _rewind;
                full = _inflight.Count >= _options.Window || (_atTail && _inflight.Count > 0);
                after = _sent;
            }

            if (rewind)
            {
                await Task.Delay(_options.RewindDelay, _time, ct);
                lock (_gate)
                {
                    _sent = _durable;
                    _inflight.Clear();
                    _rewind = false;
                    _atTail = false;
                    _tailAt = null;
                }

                continue;
            }

            if (full)
            {
                await WaitAsync(_options.PeerTimeout, ct);
                continue;
            }

            var readStart = _time.GetUtcNow();
            var read = await _stream.ReadAsync(_peer, after, _options.BatchSize, _options.BatchBytes, ct);
            if (read.Batch is { } batch)
            {
                lock (_gate)
                {
                    if (_rewind || _sent != after)
                    {
                        continue; // A rewind arrived while reading; read again from the checkpoint.
                    }

                    _inflight.Enqueue(batch.LastSeq);
                    _sent = batch.LastSeq;
                }

                using (ReplicationTracing.StartSend(_peer, batch))
                {
                    await write(new ReplicationMessage { Batch = batch }, ct);
                }
            }

            lock (_gate)
            {
                _atTail = read.AtTail && !_rewind;
                if (_atTail)
                {
                    _tailAt = read.CompleteAsOf ?? readStart;
                }
            }

            if (read.AtTail)
            {
                await WaitAsync(_stream.Signal is null ? _options.PollInterval : _options.PushedPollInterval, ct);
            }
        }
    }

    /// <summary>Handles the receiver's answer to one of this stream's batches; the checkpoint it advances is written by <see cref="PersistCheckpointsAsync"/>.</summary>
    public void OnAck(Ack ack)
    {
        lock (_gate)
        {
            if (ack.AppliedThrough > _durable)
            {
                _durable = ack.AppliedThrough;
                _state.Acknowledged[Name] = ack.AppliedThrough;
                _acked.Set();
            }

            var stillInFlight = _inflight.Contains(ack.BatchLastSeq);
            while (_inflight.Count > 0 && _inflight.Peek() <= ack.AppliedThrough)
            {
                _inflight.Dequeue();
            }

            if (ack.Rewind && stillInFlight)
            {
                _rewind = true;
            }
        }

        _wake.Set();
    }

    /// <summary>
    /// Writes the acknowledged checkpoint to the shard for the session's lifetime: at once after a quiet spell, then at
    /// most once per <see cref="Hosting.ReplicatorOptions.CheckpointInterval"/> (one statement for every acknowledgement
    /// in between), and a last time when the session ends, so a reconnect or a restart resends only what was never
    /// acknowledged. A failed write ends the session (the sender's reads fail on the same database anyway).
    /// </summary>
    public async Task PersistCheckpointsAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await _acked.WaitAsync(Timeout.InfiniteTimeSpan, _time, ct);
                await PersistAsync(ct);
                if (_options.CheckpointInterval > TimeSpan.Zero)
                {
                    await Task.Delay(_options.CheckpointInterval, _time, ct);
                }
            }
        }
        finally
        {
            using var last = new CancellationTokenSource(FinalPersistTimeout, _time);
            try
            {
                await PersistAsync(last.Token);
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or TimeoutException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                // The database is gone or the host is stopping: the next session starts from the last checkpoint written,
                // and the receiver skips what it applied since.
            }
        }
    }

    private async Task PersistAsync(CancellationToken ct)
    {
        var durable = Durable;
        if (durable > _persisted)
        {
            await _stream.SetCheckpointAsync(_peer, durable, ct);
            _persisted = durable;
        }
    }

    private Task WaitAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, _time, ct);
}
