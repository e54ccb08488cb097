using Geo.Replicator.Directory;
using Geo.Replicator.Sharding;
using Geo.Storage.Retention;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Retention;

/// <summary>
/// The retention job (docs/operations.md "Retention"): every <see cref="RetentionOptions.Interval"/> one capped pass
/// over each local shard (expired idempotency records, old conflict-log entries, acknowledged tombstones past their
/// grace period). Tombstones wait while a shard move is in flight (moves compare digests, which count them). Runs on
/// the injected <see cref="TimeProvider"/>, so tests drive it with a fake clock. The change log is pruned by the
/// replication host (it knows the peers' checkpoints), per replica set.
/// </summary>
internal sealed partial class RetentionService(LocalShards shards, DirectoryLink directory, IOptions<RetentionOptions> options,
    RetentionMetrics metrics, TimeProvider time, ILogger<RetentionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await shards.WhenMigrated(stoppingToken);
        var jobs = new Dictionary<string, ShardRetention>(StringComparer.Ordinal);
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(options.Value.Interval, time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (stoppingToken.IsCancellationRequested)
            {
                break;
            }

            var moving = directory.CurrentMap is not { } map || map.Moves.Count > 0;
            foreach (var (shardId, store) in shards.Stores)
            {
                try
                {
                    if (!jobs.TryGetValue(shardId, out var job))
                    {
                        jobs[shardId] = job = new ShardRetention(store, options.Value, time);
                    }

                    var pass = await job.RunOnceAsync(collectTombstones: !moving, stoppingToken);
                    metrics.Pass(pass);
                    if (pass.Idempotency + pass.Conflicts + pass.Tombstones > 0)
                    {
                        LogPass(logger, shardId, pass.Idempotency, pass.Conflicts, pass.Tombstones, pass.Duration.TotalMilliseconds);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    LogFailed(logger, shardId, ex.Message);
                }
            }
        }
    }

    [LoggerMessage(EventId = EventIds.RetentionPass, Level = LogLevel.Information,
        Message = "Retention on shard {ShardId}: removed {Idempotency} idempotency records, {Conflicts} conflict entries, {Tombstones} tombstones in {DurationMs} ms")]
    private static partial void LogPass(ILogger logger, string shardId, int idempotency, int conflicts, int tombstones, double durationMs);

    [LoggerMessage(EventId = EventIds.RetentionFailed, Level = LogLevel.Warning, Message = "Retention on shard {ShardId} failed: {Reason}; trying again next pass")]
    private static partial void LogFailed(ILogger logger, string shardId, string reason);
}
