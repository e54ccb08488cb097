using Dapper;
using Geo.ShardDirectory.Hosting;
using Geo.ShardDirectory.Storage;
using Geo.ShardDirectory.Users;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Geo.ShardDirectory.ShardMaps;

/// <summary>
/// Keeps this process current with changes other processes (another directory host, geoctl) commit to the same
/// database: LISTENs for map epochs and user changes, re-reads the map on every notification and, as a fallback for
/// lost notifications or a broken listen connection, every <see cref="DirectoryOptions.MapPollInterval"/>.
/// </summary>
internal sealed partial class ShardMapListener(
    NpgsqlDataSource dataSource,
    ShardMapStore maps,
    UserCache users,
    DirectoryReadiness readiness,
    DirectorySite site,
    TimeProvider time,
    IOptions<DirectoryOptions> options,
    ILogger<ShardMapListener> logger) : BackgroundService
{
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await readiness.WaitAsync(stoppingToken);
        var retryDelay = TimeSpan.FromMilliseconds(200);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                LogListenerFailed(logger, retryDelay, e);
                await Task.Delay(retryDelay, time, stoppingToken);
                retryDelay = TimeSpan.FromTicks(Math.Min(retryDelay.Ticks * 2, MaxRetryDelay.Ticks));
            }
        }
    }

    private async Task ListenAsync(CancellationToken ct)
    {
        var poll = options.Value.MapPollInterval;
        var mapNotified = 0;
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        connection.Notification += (_, e) =>
        {
            if (e.Channel == UserStore.ChangeChannel)
            {
                users.Invalidate(e.Payload);
            }
            else
            {
                Interlocked.Exchange(ref mapNotified, 1);
            }
        };
        await connection.ExecuteAsync(new CommandDefinition($"LISTEN {ShardMapStore.ChangeChannel}; LISTEN {UserStore.ChangeChannel}", cancellationToken: ct));

        // Whatever changed while we were not listening: drop cached users, re-read the map.
        users.Clear();
        await RefreshAsync(ct);
        LogListening(logger, connection.Database);
        var lastRefresh = time.GetTimestamp();
        while (true)
        {
            var notified = await connection.WaitAsync(poll, ct);
            if (!notified)
            {
                // Quiet: prove the listen connection is alive (a dead one must not silently stop notifications).
                await connection.ExecuteAsync(new CommandDefinition("SELECT 1", commandTimeout: 5, cancellationToken: ct));
            }

            if (Interlocked.Exchange(ref mapNotified, 0) == 1 || time.GetElapsedTime(lastRefresh) >= poll)
            {
                await RefreshAsync(ct);
                lastRefresh = time.GetTimestamp();
            }
        }
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        if (await maps.RefreshAsync(site.RegionId, ct))
        {
            LogEpochObserved(logger, site.RegionId);
        }
    }

    [LoggerMessage(EventId = EventIds.ListenerFailed, Level = LogLevel.Warning, Message = "Listening for directory changes failed; retrying in {RetryDelay}")]
    private static partial void LogListenerFailed(ILogger logger, TimeSpan retryDelay, Exception exception);

    [LoggerMessage(EventId = EventIds.ListenerConnected, Level = LogLevel.Information, Message = "Listening for directory changes on {Database}")]
    private static partial void LogListening(ILogger logger, string database);

    [LoggerMessage(EventId = EventIds.MapEpochObserved, Level = LogLevel.Debug, Message = "Observed a newer shard map of {RegionId}")]
    private static partial void LogEpochObserved(ILogger logger, string regionId);
}
