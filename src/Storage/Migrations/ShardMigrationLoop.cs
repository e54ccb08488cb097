using Npgsql;

namespace Geo.Storage.Migrations;

/// <summary>
/// The start-up migration of a process's shards, shared by every service that owns shard data sources: migrates each
/// shard (<see cref="ShardMigrator"/> locks, so processes that start at once are safe), and when any fails — Postgres
/// may start after the service — tries the whole round again with capped backoff (250 ms doubling to 5 s) until it
/// succeeds or the process stops. The caller logs both outcomes under its own category and event ids.
/// </summary>
public static class ShardMigrationLoop
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);

    /// <summary>True once every shard <paramref name="shards"/> lists is migrated; false when <paramref name="ct"/> stopped it first.</summary>
    /// <param name="shards">Read again on every round: shard id → data source.</param>
    /// <param name="migrated">Called per shard with the number of migrations it newly applied.</param>
    /// <param name="retrying">Called with the failure and the delay before the next round.</param>
    /// <param name="ct">The process is stopping.</param>
    public static async Task<bool> RunAsync(Func<IEnumerable<KeyValuePair<string, NpgsqlDataSource>>> shards, Action<string, int> migrated,
        Action<Exception, TimeSpan> retrying, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(shards);
        ArgumentNullException.ThrowIfNull(migrated);
        ArgumentNullException.ThrowIfNull(retrying);
        var delay = FirstDelay;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                foreach (var (shardId, dataSource) in shards())
                {
                    var applied = await ShardMigrator.MigrateAsync(dataSource, ct);
                    migrated(shardId, applied.Count);
                }

                return true;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                retrying(ex, delay);
                await Task.Delay(delay, ct);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, MaxDelay.TotalMilliseconds));
            }
        }

        return false;
    }
}
