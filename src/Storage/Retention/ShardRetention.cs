using System.Diagnostics;

namespace Geo.Storage.Retention;

/// <summary>What one retention pass removed from one shard, and how long it took.</summary>
public sealed record RetentionPass(string ShardId, int Idempotency, int Conflicts, int Tombstones, TimeSpan Duration, DateTimeOffset FinishedAt);

/// <summary>
/// One retention pass over one shard: expired idempotency records, conflict-log entries past their retention, and
/// tombstones acknowledged by every replica and older than the grace period (with their buckets' collection floors
/// raised, so no older write brings them back). Each table gets at most <see cref="RetentionOptions.MaxBatchesPerPass"/>
/// DELETEs of at most <see cref="RetentionOptions.BatchSize"/> rows. The clock is the store's <see cref="TimeProvider"/>.
/// </summary>
public sealed class ShardRetention(ShardStore store, RetentionOptions options, TimeProvider time)
{
    /// <param name="collectTombstones">False while a shard move is in flight (moves compare digests, which count tombstones).</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<RetentionPass> RunOnceAsync(bool collectTombstones = true, CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        var idempotency = options.Idempotency ? await DrainAsync(limit => store.PurgeExpiredIdempotencyAsync(limit, ct)) : 0;
        var conflicts = options.Conflicts ? await DrainAsync(limit => store.PurgeConflictsAsync(time.GetUtcNow() - options.ConflictRetention, limit, ct)) : 0;
        var tombstones = 0;
        if (options.Tombstones && collectTombstones)
        {
            var cutoff = await store.TombstoneCutoffAsync(options.TombstoneGrace, ct);
            tombstones = await DrainAsync(limit => store.CollectTombstonesAsync(cutoff, limit, ct));
        }

        return new RetentionPass(store.ShardId, idempotency, conflicts, tombstones, Stopwatch.GetElapsedTime(started), time.GetUtcNow());
    }

    private async Task<int> DrainAsync(Func<int, Task<int>> batch)
    {
        var total = 0;
        for (var i = 0; i < options.MaxBatchesPerPass; i++)
        {
            var removed = await batch(options.BatchSize);
            total += removed;
            if (removed < options.BatchSize)
            {
                break;
            }
        }

        return total;
    }
}
