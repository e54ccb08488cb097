using Geo.Storage.Migrations;

namespace Geo.RegionService.Sharding;

/// <summary>Applies the per-shard migrations at start-up (safe when several instances start at once: the migrator locks).</summary>
internal sealed partial class ShardMigrations(ShardRouter router, ILogger<ShardMigrations> logger) : BackgroundService
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True once every local shard is migrated.</summary>
    public bool IsComplete => _done.Task.IsCompletedSuccessfully;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(250);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                foreach (var (shardId, dataSource) in router.DataSources)
                {
                    var applied = await ShardMigrator.MigrateAsync(dataSource, stoppingToken);
                    LogMigrated(logger, shardId, applied.Count);
                }

                _done.TrySetResult();
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Postgres may start after us; keep trying with capped backoff, readiness stays red meanwhile.
                LogMigrationRetry(logger, ex.Message, delay.TotalMilliseconds);
                await Task.Delay(delay, stoppingToken);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    [LoggerMessage(EventId = EventIds.ShardMigrated, Level = LogLevel.Information, Message = "Shard {ShardId} migrated ({Applied} new migrations)")]
    private static partial void LogMigrated(ILogger logger, string shardId, int applied);

    [LoggerMessage(EventId = EventIds.ShardMigrationFailed, Level = LogLevel.Warning, Message = "Shard migration failed ({Reason}); retrying in {DelayMs} ms")]
    private static partial void LogMigrationRetry(ILogger logger, string reason, double delayMs);
}
