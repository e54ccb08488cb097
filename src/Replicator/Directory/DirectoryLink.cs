using System.Collections.Concurrent;
using Geo.Contracts;
using Geo.Contracts.Directory;
using Geo.Core.Signals;
using Grpc.Core;
using Geo.Core.Topology;
using Geo.Replicator.Hosting;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Directory;

/// <summary>
/// The replicator's link to its region's ShardDirectory: the shard map (followed through the watch stream), the
/// directory's replication calls, and a residency view of every user this region knows, tombstones included.
/// The view is what both sides trust: a sender ships a user's change only to regions the residency allows, a receiver
/// refuses a change when its own directory's entry excludes this region. It tails the directory's change sequence
/// (memory grows with the user count: about 100 bytes per user). The directory's WatchUserChanges stream says when
/// entries changed: the view refreshes then, and <see cref="UserChanges"/> wakes the directory stream's senders; a
/// directory without that call (an older binary) is polled instead.
/// </summary>
internal sealed class DirectoryLink : IHostedService, IAsyncDisposable
{
    private readonly GrpcChannel _channel;
    private readonly DirectoryClient _client;
    private readonly ConcurrentDictionary<string, string> _residency = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ErasedEntry> _erased = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Wakeup _tailWake = new();
    private readonly TimeProvider _time;
    private readonly TimeSpan _pollInterval;
    private readonly TimeSpan _readTimeout;
    private long _afterSeq;
    private ShardMapFollower? _follower;
    private int _disposed;
    private Task? _tail;
    private Task? _watch;

    // The view's own refresh when no pulse came (a lost one, a watch being re-established).
    private static readonly TimeSpan TailFallback = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan WatchRetryMin = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan WatchRetryMax = TimeSpan.FromSeconds(2);

    public DirectoryLink(GeoTopology topology, IOptions<GeoSiteOptions> site, Core.Tls.TlsCredentials tls, TimeProvider time, IOptions<ReplicatorOptions> options)
    {
        Region = site.Value.Region;
        _time = time;
        _pollInterval = options.Value.PollInterval;
        _readTimeout = options.Value.DirectoryReadTimeout;
        _channel = DirectoryClient.CreateChannel(topology.Region(Region).Directory, tls.ClientOptions());
        _client = new DirectoryClient(new Contracts.Directory.Directory.DirectoryClient(_channel), time: time);
    }

    public string Region { get; }

    /// <summary>The generated client (replication calls).</summary>
    public Contracts.Directory.Directory.DirectoryClient Grpc => _client.Grpc;

    /// <summary>The deadline of one page read of the directory's change log (<see cref="ReplicatorOptions.DirectoryReadTimeout"/>).</summary>
    public DateTime ReadDeadline() => _time.Deadline(_readTimeout);

    /// <summary>The newest shard map of this region, or null before the first arrived.</summary>
    public ShardMapSnapshot? CurrentMap => _follower?.Current;

    /// <summary>True once the residency view has read the directory's whole sequence at least once.</summary>
    public bool IsCaughtUp { get; private set; }

    /// <summary>Pulsed when the directory's entries changed (or every <see cref="ReplicatorOptions.PollInterval"/> while the directory cannot say).</summary>
    public ChangeSignal UserChanges { get; } = new();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _follower = _client.FollowShardMap(Region);
        _tail = TailAsync(_stopping.Token);
        _watch = WatchAsync(_stopping.Token);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        foreach (var task in new[] { _tail, _watch })
        {
            if (task is not null)
            {
                await task.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>The user's residency, reading the directory once more on a miss; null when the directory does not know the user.</summary>
    public async Task<string?> ResidencyAsync(string userId, CancellationToken ct)
    {
        if (_residency.TryGetValue(userId, out var residency))
        {
            return residency;
        }

        await RefreshAsync(ct);
        return _residency.TryGetValue(userId, out residency) ? residency : null;
    }

    /// <summary>True when this region's directory holds the user's erase marker (as far as the tail has read).</summary>
    public bool IsErased(string userId) => _erased.ContainsKey(userId);

    /// <summary>Every erase marker the tail has read since start (the erase worker completes them on this region's shards).</summary>
    public ICollection<ErasedEntry> ErasedUsers => _erased.Values;

        /// <summary>Records entries this process just applied to the directory, so the view does not wait for the tail.</summary>
    public void Remember(string userId, string residency) => _residency[userId] = residency;

    /// <summary>Waits for a map newer than <paramref name="epoch"/> up to <paramref name="timeout"/>; returns the newest.</summary>
    public Task<ShardMapSnapshot?> WaitForNewerMapAsync(long epoch, TimeSpan timeout, CancellationToken ct)
        => _follower is { } follower ? follower.WaitForNewerAsync(epoch, timeout, ct) : Task.FromResult<ShardMapSnapshot?>(null);

    // Registered under several service types (and as a hosted service), so the container disposes it more than once.
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Dispose();
        if (_follower is not null)
        {
            await _follower.DisposeAsync();
        }

        _channel.Dispose();
        _refresh.Dispose();
    }

    private async Task TailAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync(ct);
                IsCaughtUp = true;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // The directory may be starting or away; the next round tries again and lookups refresh on a miss.
            }

            try
            {
                await _tailWake.WaitAsync(TailFallback, _time, ct); // a pulse, or the fallback period: refresh either way
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Pulse()
    {
        _tailWake.Set();
        UserChanges.Pulse();
    }

    /// <summary>Relays the directory's user-change pulses; polls in their place while the watch is down or unsupported.</summary>
    private async Task WatchAsync(CancellationToken ct)
    {
        var retry = WatchRetryMin;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using var call = _client.Grpc.WatchUserChanges(new WatchUserChangesRequest(), cancellationToken: ct);
                while (await call.ResponseStream.MoveNext(ct))
                {
                    retry = WatchRetryMin;
                    if (call.ResponseStream.Current.KindCase == UserChangesEvent.KindOneofCase.Changed)
                    {
                        Pulse();
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unimplemented)
            {
                // A directory from before the watch: poll as before, until this process restarts (and finds a newer one).
                await PollAsync(ct);
                return;
            }
            catch (Exception ex) when (ex is RpcException || (ex is OperationCanceledException && !ct.IsCancellationRequested))
            {
                // The directory is restarting or away: what changed meanwhile is read on reconnect (its first event is a pulse).
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Pulse(); // Keep the senders and the view going at the retry pace while there is no watch.
            await Task.Delay(retry, _time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, WatchRetryMax.Ticks));
        }
    }

    private async Task PollAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Pulse();
            await Task.Delay(_pollInterval, _time, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        await _refresh.WaitAsync(ct);
        try
        {
            while (true)
            {
                var page = await _client.Grpc.ReadUserChangesAsync(new ReadUserChangesRequest { AfterSeq = _afterSeq, Limit = 1000 }, _client.PageCall(ct));
                foreach (var change in page.Changes)
                {
                    _residency[change.Entry.UserId] = change.Entry.Residency;
                    if (change.Entry.Deleted)
                    {
                        _erased[change.Entry.UserId] = new ErasedEntry(change.Entry.UserId, change.Entry.Residency,
                            new Core.Versioning.DataVersion(new Core.Clock.HlcTimestamp(change.Entry.Version.Hlc), change.Entry.Version.Origin));
                    }
                }

                var advanced = page.NextAfterSeq > _afterSeq;
                _afterSeq = Math.Max(_afterSeq, page.NextAfterSeq);
                if (page.Changes.Count == 0 || !advanced)
                {
                    return;
                }
            }
        }
        finally
        {
            _refresh.Release();
        }
    }
}

/// <summary>An erase marker of this region's directory: the user, its residency, the erase version.</summary>
internal sealed record ErasedEntry(string UserId, string Residency, Core.Versioning.DataVersion Version);
