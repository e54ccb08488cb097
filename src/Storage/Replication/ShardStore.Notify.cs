using Dapper;
using Npgsql;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    /// <summary>The channel on which a shard database announces committed local changes (LISTEN is per database).</summary>
    public const string ChangeChannel = "geo_change_log";

    private static readonly TimeSpan ListenRetry = TimeSpan.FromSeconds(1);

    // A NOTIFY commits a transaction of its own; nothing depends on it surviving a crash (senders also poll), so it does
    // not wait for the WAL flush. One statement: the setting applies to its implicit transaction, which commits after it.
    private const string NotifySql = "SELECT set_config('synchronous_commit', 'off', true), pg_notify('" + ChangeChannel + "', '')";

    private readonly SemaphoreSlim _notifyPending = new(0, 1);

    // NOTIFYs received by ListenForChangesAsync (and its re-LISTENs, which may have missed some); see SendersStablePositionAsync.
    private long _notifications;
    private volatile bool _listening;
    private int _notifyRequested;
    private int _notifierStarted;

    /// <summary>
    /// Tells the shard's listeners (the replicator's senders) that a local change committed. Not in the writer's
    /// transaction: a NOTIFY there would serialize every notifying commit on the server's notification-queue lock.
    /// One notifier per store sends them on its own connection, one at a time: the commits that land while one is in
    /// flight share the next (batching under load, one per write when idle). Best effort: senders also poll.
    /// </summary>
    private void SignalCommitted()
    {
        if (Interlocked.Exchange(ref _notifyRequested, 1) == 1)
        {
            return; // One is already due; it covers this commit.
        }

        if (Interlocked.Exchange(ref _notifierStarted, 1) == 0)
        {
            _ = Task.Run(NotifyLoopAsync);
        }

        if (_notifyPending.CurrentCount == 0)
        {
            try
            {
                _notifyPending.Release();
            }
            catch (SemaphoreFullException)
            {
                // Released by a concurrent commit: one wake-up is enough.
            }
        }
    }

    private async Task NotifyLoopAsync()
    {
        while (true)
        {
            await _notifyPending.WaitAsync();
            Interlocked.Exchange(ref _notifyRequested, 0);
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync();
                await connection.ExecuteAsync(NotifySql);
            }
            catch (ObjectDisposedException)
            {
                return; // The store's data source is gone (shutdown).
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                LogNotifyFailed(ShardId, ex.Message); // Senders fall back to their poll interval.
            }
        }
    }

    /// <summary>
    /// Calls <paramref name="onChange"/> whenever a local change committed on this shard (as announced on
    /// <see cref="ChangeChannel"/>), until <paramref name="ct"/> is cancelled; reconnects after a failure.
    /// </summary>
    public async Task ListenForChangesAsync(Action onChange, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(onChange);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(ct);
                connection.Notification += (_, _) =>
                {
                    Interlocked.Increment(ref _notifications);
                    onChange();
                };
                await connection.ExecuteAsync("LISTEN " + ChangeChannel);
                Interlocked.Increment(ref _notifications); // Anything committed before the LISTEN took effect went unannounced.
                _listening = true;
                onChange();
                while (true)
                {
                    await connection.WaitAsync(ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return; // The store's data source is gone (shutdown).
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Never fatal to the caller: senders still poll; listen again after a pause.
                _listening = false;
                LogNotifyFailed(ShardId, ex.Message);
                await Task.Delay(ListenRetry, _time, ct);
            }
            finally
            {
                _listening = false;
            }
        }
    }
}
