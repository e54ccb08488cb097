using System.Diagnostics;
using Geo.Cli.CommandLine;
using Geo.Contracts.Directory;
using Geo.Storage.Moves;

namespace Geo.Cli.Shards;

/// <summary>
/// Runs one move of docs/architecture.md §9 and resumes it from any step: the directory's move record holds the phase,
/// the source shard's progress row (<see cref="MoveProgressStore"/>) the copy watermark and timings. Every step is idempotent.
/// </summary>
internal sealed class MoveRunner(RegionConnection region, Action<string, int, string> report)
{
    /// <summary>Steps, for progress: begin, copy, catch up, fence, final catch-up + flip, verify, clean + complete.</summary>
    public const int Steps = 7;

    private const int ChangeBatch = 5000;
    private const int MaxCatchUpPasses = 50;
    private static readonly TimeSpan CatchUpBudget = TimeSpan.FromMinutes(5);

    // Fewer changes than this in a pass: the source's log is nearly drained, so the fenced window replays only a few.
    private const int FenceWhenBelow = 50;

    public async Task<MoveProgress> RunAsync(PlannedMove move, long? planEpoch, CancellationToken ct)
    {
        var id = move.MoveId;
        var source = region.DataSource(move.From);
        var target = region.DataSource(move.To);
        var progressOf = region.Progress(move.From);
        var targetStore = region.Store(move.To);
        var sourceStore = region.Store(move.From);

        var state = await region.GetMoveAsync(id, ct);
        if (state is null)
        {
            var map = await region.MapAsync(ct);
            if (planEpoch is { } epoch && map.Epoch != epoch)
            {
                throw new GeoCliException(ExitCodes.Failed, $"The plan is stale: it was made at map epoch {epoch}, the map of {region.Id} is at epoch {map.Epoch}. Make a new plan with 'geoctl shards plan'.");
            }

            var moved = move.Buckets.Where(b => map.Map.ShardOf(b) != move.From).Take(5).ToArray();
            if (moved.Length > 0)
            {
                throw new GeoCliException(ExitCodes.Failed, $"The plan is stale: bucket(s) {string.Join(", ", moved)} are no longer on {move.From}. Make a new plan.");
            }

            await targetStore.UnfenceBucketsAsync(move.Buckets, ct); // a target is never fenced (it may hold an old fence from a move away)
            state = (await region.CallAsync(o => region.Directory.BeginMoveAsync(
                new BeginMoveRequest { Region = region.Id, MoveId = id, ExpectedEpoch = map.Epoch, Buckets = { move.Buckets }, TargetShard = move.To }, o).ResponseAsync, ct)).Move;
        }

        if (state.SourceShard != move.From || state.TargetShard != move.To)
        {
            throw new GeoCliException(ExitCodes.Failed, $"Move '{id}' in the directory goes {state.SourceShard} -> {state.TargetShard}, the plan says {move.From} -> {move.To}.");
        }

        await progressOf.EnsureAsync(id, region.Id, move.From, move.To, move.Buckets, ct);
        report(id, 1, $"begun ({state.Phase})");
        long? caughtUp = null, idempotencySeq = null; // known when this run fenced the move itself
        Stopwatch? fenceClock = null;
        var sourceFenced = false;
        var timings = new List<string>();
        switch (state.Phase)
        {
            case MovePhase.Cancelled:
                throw new GeoCliException(ExitCodes.Failed, $"Move '{id}' was cancelled; make a new plan to move these buckets.");
            case MovePhase.Completed:
                report(id, Steps, "already completed");
                return await progressOf.ReadAsync(id, ct);
        }

        if (state.Phase == MovePhase.Begun)
        {
            await targetStore.UnfenceBucketsAsync(move.Buckets, ct);
            var progress = await progressOf.ReadAsync(id, ct);
            if (progress.CopySeq is null)
            {
                report(id, 1, $"copying {move.Buckets.Length} buckets {move.From} -> {move.To}");
                var (seq, rows) = await BucketData.CopyAsync(source, target, move.Buckets, (table, n) => report(id, 1, $"copied {table}: {n} rows"), ct);
                await progressOf.CopiedAsync(id, seq, rows.Values.Sum(), ct);
            }

            report(id, 2, "catching up from the source change log");
            var started = Stopwatch.GetTimestamp();
            for (var pass = 0; pass < MaxCatchUpPasses && Stopwatch.GetElapsedTime(started) < CatchUpBudget; pass++)
            {
                var applied = await CatchUpAsync(move, after: null, ct);
                report(id, 2, $"catch-up pass {pass + 1}: {applied.Count} changes");
                if (applied.Count < FenceWhenBelow)
                {
                    break;
                }
            }

            // Idempotency records have no change log: copy them now, and under the fence only those of users written since.
            var records = await BucketData.CopyIdempotencyAsync(source, target, move.Buckets, sinceSeq: null, ct);
            report(id, 2, $"copied {records.Rows} idempotency records");
            idempotencySeq = records.SnapshotSeq;

            // One last pass right before the fence, so the fenced window replays only what arrives in the last moments.
            caughtUp = (await CatchUpAsync(move, after: null, ct)).After;
            await progressOf.FencingAsync(id, region.Time.GetUtcNow(), ct);
            var map = await region.MapAsync(ct);
            fenceClock = Stopwatch.StartNew(); // writes can wait from here: the two fences start now
            // The directory fence (services hold writes) and the source's database fence (nothing more commits there)
            // at the same time: each alone is enough for no write to be lost, and the window is the longer of the two.
            var directoryFence = region.CallAsync(o => region.Directory.FenceMoveAsync(new MoveStepRequest { MoveId = id, ExpectedEpoch = map.Epoch }, o).ResponseAsync, ct);
            var databaseFence = TimedAsync(() => sourceStore.FenceBucketsAsync(id, map.Epoch + 1, move.Buckets, ct));
            try
            {
                state = (await directoryFence).Move;
            }
            catch
            {
                await databaseFence.ContinueWith(_ => { }, TaskScheduler.Default);
                await sourceStore.UnfenceBucketsAsync(move.Buckets, CancellationToken.None); // not fenced in the directory: let writes through again
                throw;
            }

            timings.Add($"directory fence {fenceClock.Elapsed.TotalMilliseconds:F0} ms");
            timings.Add($"source fence {(await databaseFence).TotalMilliseconds:F0} ms (in parallel)");
            sourceFenced = true;
            report(id, 3, $"fenced at epoch {state.FencedEpoch}");
        }

        if (state.Phase == MovePhase.Fenced)
        {
            // The fenced window: only the final catch-up and the flip. Resumed here after a crash, it starts from the durable watermark.
            fenceClock ??= Stopwatch.StartNew();
            var mark = fenceClock.Elapsed;
            if (!sourceFenced)
            {
                // After this no write to the buckets can commit on the source: in-flight ones finished, later ones are refused.
                await sourceStore.FenceBucketsAsync(id, state.FencedEpoch, move.Buckets, ct);
                timings.Add($"source fence {(fenceClock.Elapsed - mark).TotalMilliseconds:F0} ms");
                mark = fenceClock.Elapsed;
            }

            // Nothing commits on the source any more: one pass is complete. The changed users' rows are copied in a few
            // statements rather than replayed change by change, unless an erase needs the replay.
            var after = caughtUp ?? (await progressOf.ReadAsync(id, ct)).CaughtUpSeq ?? throw new InvalidOperationException($"Move '{id}' has no copy watermark.");
            var recopied = await BucketData.RecopyChangedUsersAsync(source, target, move.Buckets, after, ct);
            var final = recopied is { } r ? r.Changes : (await CatchUpAsync(move, after, ct)).Count;
            if (recopied is { Changes: > 0 } done)
            {
                await progressOf.CaughtUpAsync(id, done.LastSeq, done.Changes, ct);
            }

            timings.Add($"final catch-up {final} changes{(recopied is null ? " replayed" : " by row copy")} {(fenceClock.Elapsed - mark).TotalMilliseconds:F0} ms");
            mark = fenceClock.Elapsed;
            var records = await BucketData.CopyIdempotencyAsync(source, target, move.Buckets, idempotencySeq, ct);
            timings.Add($"idempotency {records.Rows} records {(fenceClock.Elapsed - mark).TotalMilliseconds:F0} ms");
            mark = fenceClock.Elapsed;
            var expected = caughtUp is null ? (await region.MapAsync(ct)).Epoch : state.FencedEpoch; // resumed: the map may have moved on
            state = (await region.CallAsync(o => region.Directory.FlipMoveAsync(new MoveStepRequest { MoveId = id, ExpectedEpoch = expected }, o).ResponseAsync, ct)).Move;
            timings.Add($"flip {(fenceClock.Elapsed - mark).TotalMilliseconds:F0} ms");
            var flippedAt = region.Time.GetUtcNow();
            var window = fenceClock.Elapsed.TotalMilliseconds;
            await progressOf.FlippedAsync(id, flippedAt, resumed: caughtUp is null, window, ct);
            var pause = (await progressOf.ReadAsync(id, ct)).PauseMs;
            report(id, 4, $"flipped at epoch {state.FlippedEpoch}: writes paused {pause:F0} ms ({string.Join(", ", timings)})");
        }

        if (state.Phase == MovePhase.Flipped)
        {
            await sourceStore.FenceBucketsAsync(id, state.FencedEpoch, move.Buckets, ct); // stays: the source no longer owns them
            var progress = await progressOf.ReadAsync(id, ct);
            if (progress.RowsCleaned is null)
            {
                report(id, 5, "verifying source vs target row by row");
                var (same, newer, problems) = RowComparison.Compare(
                    await BucketData.ReadRowsAsync(source, move.Buckets, ct), await BucketData.ReadRowsAsync(target, move.Buckets, ct));
                if (problems.Count > 0)
                {
                    await progressOf.VerifiedAsync(id, "failed: " + string.Join("; ", problems), ct);
                    throw new GeoCliException(ExitCodes.Failed,
                        $"Move '{id}': the target lacks rows of the source; the source was not cleaned (rerun apply after fixing, or inspect with 'geoctl shards verify'):\n  {string.Join("\n  ", problems)}");
                }

                await progressOf.VerifiedAsync(id, $"ok: {same} rows equal, {newer} newer on the target", ct);
                report(id, 5, $"verified: {same} rows equal, {newer} newer on the target");
                var cleaned = await BucketData.DeleteAsync(source, move.Buckets, ct);
                await progressOf.CleanedAsync(id, cleaned, ct);
                report(id, 6, $"cleaned {cleaned} rows from {move.From}");
            }

            var map = await region.MapAsync(ct);
            await region.CallAsync(o => region.Directory.CompleteMoveAsync(new MoveStepRequest { MoveId = id, ExpectedEpoch = map.Epoch }, o).ResponseAsync, ct);
            await progressOf.CompletedAsync(id, region.Time.GetUtcNow(), ct);
            report(id, Steps, "completed");
        }

        return await progressOf.ReadAsync(id, ct);
    }

    /// <summary>Rolls a move back before its flip: unfences the source, cancels it in the directory, deletes what was copied to the target.</summary>
    public async Task<(MoveState Move, long Deleted)> CancelAsync(string moveId, CancellationToken ct)
    {
        var state = await region.GetMoveAsync(moveId, ct) ?? throw GeoCliException.NotFound($"--move: the directory of {region.Id} does not know move '{moveId}'.");
        if (state.Phase is MovePhase.Flipped or MovePhase.Completed)
        {
            throw GeoCliException.Refused($"Move '{moveId}' is {state.Phase}: past the flip it cannot be cancelled; plan a move back instead.");
        }

        var buckets = state.Buckets.ToArray();
        await region.Store(state.SourceShard).UnfenceBucketsAsync(buckets, ct);
        state = (await CancelAtCurrentEpochAsync(moveId, ct)).Move;
        var deleted = await BucketData.DeleteAsync(region.DataSource(state.TargetShard), buckets, ct);
        await region.Progress(state.SourceShard).CancelledAsync(moveId, ct);
        return (state, deleted);
    }

    private async Task<MoveResponse> CancelAtCurrentEpochAsync(string moveId, CancellationToken ct)
    {
        var map = await region.MapAsync(ct);
        return await region.CallAsync(o => region.Directory.CancelMoveAsync(new MoveStepRequest { MoveId = moveId, ExpectedEpoch = map.Epoch }, o).ResponseAsync, ct);
    }

    /// <summary>
    /// Replays the source's change log of the buckets after the watermark (<paramref name="after"/>, or the durable one
    /// when null) onto the target, until a batch comes back short; returns how many changes and the new watermark.
    /// Replaying a change twice is harmless (apply-if-newer, counters merge by max), so the watermark is saved after each batch.
    /// </summary>
    private async Task<(int Count, long After)> CatchUpAsync(PlannedMove move, long? after, CancellationToken ct)
    {
        var progressOf = region.Progress(move.From);
        var position = after ?? (await progressOf.ReadAsync(move.MoveId, ct)).CaughtUpSeq
            ?? throw new InvalidOperationException($"Move '{move.MoveId}' has no copy watermark.");
        var total = 0;
        while (true)
        {
            var changes = await region.Store(move.From).ReadChangesAsync(position, ChangeBatch, origin: null, buckets: move.Buckets, ct);
            if (changes.Count == 0)
            {
                return (total, position);
            }

            var outcomes = await region.Store(move.To).ApplyRemoteAsync(changes, checkpoint: null, ct);
            if (outcomes.Any(o => o == Storage.ApplyOutcome.Quarantined))
            {
                throw new GeoCliException(ExitCodes.Failed, $"Move '{move.MoveId}': the target quarantined changes (clock skew); nothing past seq {position} was recorded.");
            }

            position = changes[^1].Seq;
            total += changes.Count;
            await progressOf.CaughtUpAsync(move.MoveId, position, changes.Count, ct);
            if (changes.Count < ChangeBatch)
            {
                return (total, position);
            }
        }
    }

    private static async Task<TimeSpan> TimedAsync(Func<Task> action)
    {
        var started = Stopwatch.GetTimestamp();
        await action();
        return Stopwatch.GetElapsedTime(started);
    }
}
