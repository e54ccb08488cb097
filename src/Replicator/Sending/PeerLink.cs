using System.Collections.Concurrent;
using Geo.Contracts.Replication;
using Geo.Core.Clock;
using Geo.Replicator.Hosting;
using Grpc.Core;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

namespace Geo.Replicator.Sending;

/// <summary>
/// The outbound link to one peer region: one bidirectional stream carrying every local stream's batches and
/// heartbeats. A failed or silent stream (no reply within <see cref="ReplicatorOptions.PeerTimeout"/>) is torn down and
/// reopened with jittered exponential backoff; a per-peer circuit breaker stops hammering a peer that keeps failing.
/// Each session restarts from the durable checkpoints, so a restart or reconnect loses nothing (at-least-once).
/// </summary>
internal sealed partial class PeerLink
{
    private readonly string _local;
    private readonly Uri _address;
    private readonly IReadOnlyList<IChangeStream> _streams;
    private readonly IPeerTransport _transport;
    private readonly ReplicatorOptions _options;
    private readonly HybridLogicalClock _clock;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline _pipeline;
    private int _consecutiveFailures;

    public PeerLink(string local, string peer, Uri address, IReadOnlyList<IChangeStream> streams, IPeerTransport transport,
        PeerState state, ReplicatorOptions options, HybridLogicalClock clock, TimeProvider time, Random random, ILogger logger)
    {
        _local = local;
        Peer = peer;
        _address = address;
        _streams = streams;
        _transport = transport;
        _options = options;
        _clock = clock;
        _time = time;
        _random = random;
        _logger = logger;
        State = state;
        _pipeline = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException),
                MaxRetryAttempts = int.MaxValue,
                DelayGenerator = _ => ValueTask.FromResult<TimeSpan?>(Backoff()),
                OnRetry = args =>
                {
                    if (args.Outcome.Exception is BrokenCircuitException)
                    {
                        return ValueTask.CompletedTask;
                    }

                    State.LastError = args.Outcome.Exception?.Message ?? string.Empty;
                    LogPeerFailed(_logger, Peer, _address.ToString(), args.Outcome.Exception?.GetType().Name ?? "?", State.LastError);
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException),
                FailureRatio = 1.0,
                MinimumThroughput = options.BreakerFailures,
                SamplingDuration = TimeSpan.FromSeconds(Math.Max(30, options.BreakDuration.TotalSeconds * 3)),
                BreakDuration = options.BreakDuration,
                OnOpened = args =>
                {
                    LogBreakerOpen(_logger, Peer, args.BreakDuration.TotalSeconds);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    public string Peer { get; }

    public PeerState State { get; }

    public IReadOnlyList<IChangeStream> Streams => _streams;

    public Task RunAsync(CancellationToken ct) => _pipeline.ExecuteAsync(RunSessionAsync, ct).AsTask();

    // Full jitter (a random delay up to the exponential cap), so links that failed together do not retry together.
    private TimeSpan Backoff()
    {
        var failures = Interlocked.Increment(ref _consecutiveFailures);
        var cap = Math.Min(_options.MaxBackoff.TotalMilliseconds, _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 20)));
        return TimeSpan.FromMilliseconds(_options.InitialBackoff.TotalMilliseconds / 2 + (_random.NextDouble() * cap));
    }

    private async ValueTask RunSessionAsync(CancellationToken ct)
    {
        using var session = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // Who this replicator is travels in its client certificate (mutual TLS), never in a header.
        using var call = _transport.Client(_address).Replicate(cancellationToken: session.Token);
        var writeLock = new SemaphoreSlim(1, 1);
        async Task WriteAsync(ReplicationMessage message, CancellationToken token)
        {
            await writeLock.WaitAsync(token);
            try
            {
                await call.RequestStream.WriteAsync(message, token);
            }
            finally
            {
                writeLock.Release();
            }
        }

        var senders = new List<StreamSender>();
        foreach (var stream in _streams)
        {
            senders.Add(new StreamSender(stream, Peer, await stream.GetCheckpointAsync(Peer, session.Token), _options, _time, State));
        }

        var byName = senders.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var heartbeats = new ConcurrentDictionary<long, (DateTimeOffset? CleanAt, long[] Required)>();
        var lastReply = _time.GetUtcNow().ToUnixTimeMilliseconds();

        async Task ReadRepliesAsync(CancellationToken token)
        {
            await foreach (var reply in call.ResponseStream.ReadAllAsync(token))
            {
                Interlocked.Exchange(ref lastReply, _time.GetUtcNow().ToUnixTimeMilliseconds());
                if (!State.Connected)
                {
                    State.Connected = true;
                    State.LastError = string.Empty;
                    Interlocked.Exchange(ref _consecutiveFailures, 0);
                    LogPeerConnected(_logger, Peer, _address.ToString());
                }

                switch (reply.KindCase)
                {
                    case ReplicationReply.KindOneofCase.Ack when byName.TryGetValue(reply.Ack.Stream, out var sender):
                        if (reply.Ack.Unsupported > 0 && State.LastError != reply.Ack.HeldReason)
                        {
                            // The peer runs an older binary: the stream waits (lag grows), nothing is lost or skipped.
                            State.LastError = reply.Ack.HeldReason;
                            LogPeerHeld(_logger, Peer, reply.Ack.HeldReason);
                        }

                        sender.OnAck(reply.Ack);
                        break;
                    case ReplicationReply.KindOneofCase.Heartbeat:
                        if (heartbeats.TryRemove(reply.Heartbeat.Id, out var beat) && beat.CleanAt is { } cleanAt
                            && senders.Select((s, i) => s.Durable >= beat.Required[i]).All(ok => ok))
                        {
                            State.Synced(cleanAt);
                        }

                        foreach (var old in heartbeats.Keys.Where(k => k < reply.Heartbeat.Id))
                        {
                            heartbeats.TryRemove(old, out _);
                        }

                        break;
                }
            }

            throw new IOException($"Peer {Peer} closed the replication stream.");
        }

        async Task HeartbeatAsync(CancellationToken token)
        {
            for (long id = 1; ; id++)
            {
                await Task.Delay(_options.HeartbeatInterval, _time, token);
                var now = _time.GetUtcNow();
                if (now.ToUnixTimeMilliseconds() - Interlocked.Read(ref lastReply) > _options.PeerTimeout.TotalMilliseconds)
                {
                    throw new TimeoutException($"No reply from {Peer} for {_options.PeerTimeout.TotalSeconds:0.#} s.");
                }

                var snapshots = senders.Select(s => s.Snapshot()).ToArray();
                DateTimeOffset? cleanAt = snapshots.All(s => s.TailAt is not null) ? snapshots.Min(s => s.TailAt!.Value) : null;
                heartbeats[id] = (cleanAt, [.. snapshots.Select(s => s.Sent)]);
                var heartbeat = new Heartbeat
                {
                    Id = id, SentAtUnixMs = now.ToUnixTimeMilliseconds(), Hlc = _clock.Current.Value,
                    ProtocolVersion = Contracts.ProtocolVersions.Replication, MinProtocolVersion = Contracts.ProtocolVersions.MinimumReplication,
                };
                heartbeat.Kinds.Add(Receiving.KnownKinds.Built);
                await WriteAsync(new ReplicationMessage { Heartbeat = heartbeat }, token);
            }
        }

        var tasks = new List<Task> { ReadRepliesAsync(session.Token), HeartbeatAsync(session.Token) };
        tasks.AddRange(senders.Select(s => s.RunAsync(WriteAsync, session.Token)));
        tasks.AddRange(senders.Select(s => s.PersistCheckpointsAsync(session.Token)));
        try
        {
            var first = await Task.WhenAny(tasks);
            await session.CancelAsync();
            await Task.WhenAll(tasks).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            ct.ThrowIfCancellationRequested();
            await first; // Surfaces the failure that ended the session.
            throw new IOException($"Replication session with {Peer} ended.");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new IOException($"Replication session with {Peer} was cancelled.");
        }
        finally
        {
            State.Connected = false;
            writeLock.Dispose();
        }
    }

    [LoggerMessage(EventId = EventIds.PeerConnected, Level = LogLevel.Information, Message = "Replicating to {Peer} at {Address}")]
    private static partial void LogPeerConnected(ILogger logger, string peer, string address);

    [LoggerMessage(EventId = EventIds.PeerFailed, Level = LogLevel.Warning, Message = "Replication to {Peer} at {Address} failed ({ExceptionType}: {Reason}); reconnecting with backoff")]
    private static partial void LogPeerFailed(ILogger logger, string peer, string address, string exceptionType, string reason);

    [LoggerMessage(EventId = EventIds.PeerHeldUnsupported, Level = LogLevel.Warning, Message = "Replication to {Peer} is held: {Reason}")]
    private static partial void LogPeerHeld(ILogger logger, string peer, string reason);

    [LoggerMessage(EventId = EventIds.PeerBreakerOpen, Level = LogLevel.Warning, Message = "Circuit to {Peer} opened for {BreakSeconds} s after repeated failures")]
    private static partial void LogBreakerOpen(ILogger logger, string peer, double breakSeconds);
}
