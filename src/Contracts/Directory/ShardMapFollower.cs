using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Geo.Contracts.Directory;

/// <summary>
/// Keeps the latest shard map of one region by following the directory's WatchShardMap stream. Reconnects with
/// jittered exponential backoff, treats a stream that stays silent past the idle timeout as dead, and keeps serving the
/// last known map while the directory is unreachable. Maps only move forward in epoch.
/// </summary>
public sealed partial class ShardMapFollower : IAsyncDisposable
{
    private readonly Directory.DirectoryClient _client;
    private readonly string _region;
    private readonly ShardMapFollowerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Random _random;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ShardMapSnapshot? _current;
    private Task _loop = Task.CompletedTask;
    private volatile bool _connected;
    private int _disposed;

    /// <param name="client">The generated directory client.</param>
    /// <param name="region">Region whose map to follow; empty for the directory's own region.</param>
    /// <param name="options">Backoff and liveness settings; defaults when null.</param>
    /// <param name="time">Clock for backoff and idle detection; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="logger">Where reconnects are logged; nothing when null.</param>
    /// <param name="random">Jitter source; <see cref="Random.Shared"/> when null.</param>
    public ShardMapFollower(
        Directory.DirectoryClient client,
        string region = "",
        ShardMapFollowerOptions? options = null,
        TimeProvider? time = null,
        ILogger? logger = null,
        Random? random = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _region = region ?? string.Empty;
        _options = options ?? new ShardMapFollowerOptions();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _random = random ?? Random.Shared;
    }

    /// <summary>The latest map received; null until the first one arrives. Stays set while the directory is down.</summary>
    public ShardMapSnapshot? Current => Volatile.Read(ref _current);

    /// <summary>True while a watch stream is open and has delivered something.</summary>
    public bool IsConnected => _connected;

    /// <summary>Raised (on a background thread) after <see cref="Current"/> moved to a newer epoch.</summary>
    public event EventHandler<ShardMapSnapshot>? Changed;

    /// <summary>Starts following in the background; calling it again does nothing.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_loop.IsCompleted && !_stop.IsCancellationRequested)
            {
                _loop = Task.Run(() => RunAsync(_stop.Token));
            }
        }
    }

    /// <summary>
    /// Waits for a map newer than <paramref name="epoch"/>, at most <paramref name="timeout"/> on this follower's clock;
    /// returns the newest map then (null before the first arrived).
    /// </summary>
    public async Task<ShardMapSnapshot?> WaitForNewerAsync(long epoch, TimeSpan timeout, CancellationToken ct)
    {
        using var expiry = new CancellationTokenSource(timeout, _time);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct, expiry.Token);
        try
        {
            return await WaitForEpochAsync(epoch + 1, limit.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return Current;
        }
    }

    /// <summary>Completes once <see cref="Current"/> has reached <paramref name="epoch"/> (or a later one).</summary>
    public async Task<ShardMapSnapshot> WaitForEpochAsync(long epoch, CancellationToken ct = default)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_current is { } map && map.Epoch >= epoch)
                {
                    return map;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(ct);
        }
    }

    /// <summary>Stops following; <see cref="Current"/> keeps its last value. Safe to call more than once (the container
    /// disposes a singleton once per registration that resolves it).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken ct)
    {
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (await FollowOnceAsync(ct))
                {
                    failures = 0;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RpcException or OperationCanceledException or IOException or InvalidDataException)
            {
                LogStreamFailed(_logger, _region, Current?.Epoch ?? 0, e.Message);
            }

            _connected = false;
            await Task.Delay(Backoff(failures++), _time, ct);
        }
    }

    /// <summary>One watch call until it ends, fails or goes silent; true when it delivered anything.</summary>
    private async Task<bool> FollowOnceAsync(CancellationToken ct)
    {
        var heard = false;
        var idleTimeout = _options.IdleTimeout;
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var idleTimer = _time.CreateTimer(static s => ((CancellationTokenSource)s!).Cancel(), idle, idleTimeout, Timeout.InfiniteTimeSpan);
        var request = new WatchShardMapRequest { Region = _region, KnownEpoch = Current?.Epoch ?? 0 };

        using var call = _client.WatchShardMap(request, deadline: _time.Deadline(_options.StreamDeadline), cancellationToken: idle.Token);
        try
        {
            while (await call.ResponseStream.MoveNext(idle.Token))
            {
                var message = call.ResponseStream.Current;
                if (message.Heartbeat is { IntervalMs: > 0 } heartbeat)
                {
                    idleTimeout = TimeSpan.FromTicks(Math.Max(_options.IdleTimeout.Ticks, TimeSpan.FromMilliseconds(heartbeat.IntervalMs * 3L).Ticks));
                }

                idleTimer.Change(idleTimeout, Timeout.InfiniteTimeSpan);
                if (!heard)
                {
                    heard = true;
                    _connected = true;
                    LogConnected(_logger, _region, Current?.Epoch ?? 0);
                }

                if (message.Map is not null)
                {
                    Accept(ShardMapSnapshot.FromProto(message.Map));
                }
            }
        }
        catch (Exception e) when (idle.IsCancellationRequested && !ct.IsCancellationRequested && e is RpcException or OperationCanceledException)
        {
            LogIdle(_logger, _region, idleTimeout);
        }

        return heard;
    }

    private void Accept(ShardMapSnapshot map)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            if (_current is not null && _current.Epoch >= map.Epoch)
            {
                return;
            }

            Volatile.Write(ref _current, map);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
        LogMapChanged(_logger, map.Region, map.Epoch);
        Changed?.Invoke(this, map);
    }

    // Full jitter: uniform in [0, min(max, initial * 2^failures)], so reconnecting clients spread out.
    private TimeSpan Backoff(int failures)
    {
        var ceiling = Math.Min(_options.MaxBackoff.Ticks, _options.InitialBackoff.Ticks * (1L << Math.Min(failures, 20)));
        return TimeSpan.FromTicks((long)(_random.NextDouble() * ceiling));
    }

    [LoggerMessage(EventId = EventIds.FollowingShardMap, Level = LogLevel.Information, Message = "Following the shard map of {RegionId} from epoch {Epoch}")]
    private static partial void LogConnected(ILogger logger, string regionId, long epoch);

    [LoggerMessage(EventId = EventIds.ShardMapWatchFailed, Level = LogLevel.Warning, Message = "Shard map watch of {RegionId} failed at epoch {Epoch}, serving the last known map: {Reason}")]
    private static partial void LogStreamFailed(ILogger logger, string regionId, long epoch, string reason);

    [LoggerMessage(EventId = EventIds.ShardMapWatchSilent, Level = LogLevel.Warning, Message = "Shard map watch of {RegionId} was silent for {IdleTimeout}; reconnecting")]
    private static partial void LogIdle(ILogger logger, string regionId, TimeSpan idleTimeout);

    [LoggerMessage(EventId = EventIds.ShardMapEpoch, Level = LogLevel.Debug, Message = "Shard map of {RegionId} is now at epoch {Epoch}")]
    private static partial void LogMapChanged(ILogger logger, string regionId, long epoch);
}
