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
        // Postgres may start after us: the loop keeps trying with capped backoff, readiness stays red meanwhile.
        if (await ShardMigrationLoop.RunAsync(() => router.DataSources, (shardId, applied) => LogMigrated(logger, shardId, applied),
                (ex, delay) => LogMigrationRetry(logger, ex.Message, delay.TotalMilliseconds), stoppingToken))
        {
            _done.TrySetResult();
        }
    }

    [LoggerMessage(EventId = EventIds.ShardMigrated, Level = LogLevel.Information, Message = "Shard {ShardId} migrated ({Applied} new migrations)")]
    private static partial void LogMigrated(ILogger logger, string shardId, int applied);

    [LoggerMessage(EventId = EventIds.ShardMigrationFailed, Level = LogLevel.Warning, Message = "Shard migration failed ({Reason}); retrying in {DelayMs} ms")]
    private static partial void LogMigrationRetry(ILogger logger, string reason, double delayMs);
}
