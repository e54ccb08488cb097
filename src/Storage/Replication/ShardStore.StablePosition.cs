namespace Geo.Storage;

public sealed partial class ShardStore
{
    private readonly Lock _stableGate = new();
    private Task<long?>? _stableRunning;
    private Task<long?>? _stableNext;

    /// <summary>
    /// The change log's stable position as of a moment after this call began, computed once for all concurrent callers:
    /// every sender of a shard (one per peer) reads at the tail when the shard's NOTIFY wakes them, and each computing
    /// its own position meant one observation and one xmin poll loop per sender. A caller that arrives while a
    /// computation runs joins the next one, which starts when the running one ends (the running one may predate commits
    /// the caller must see). Null when a writer that was running did not end within <see cref="StableWait"/>.
    /// </summary>
    private Task<long?> SharedStablePositionAsync(CancellationToken ct)
    {
        lock (_stableGate)
        {
            if (_stableRunning is null || _stableRunning.IsCompleted)
            {
                _stableRunning = ComputeStablePositionAsync();
                return _stableRunning.WaitAsync(ct);
            }

            _stableNext ??= AfterRunningAsync(_stableRunning);
            return _stableNext.WaitAsync(ct);
        }
    }

    private async Task<long?> AfterRunningAsync(Task<long?> running)
    {
        await ((Task)running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Task<long?> next;
        lock (_stableGate)
        {
            next = _stableRunning = ComputeStablePositionAsync();
            _stableNext = null;
        }

        return await next;
    }

    // Not cancelled by any one caller: the others wait for it too. Bounded by StableWait and the command timeout.
    private async Task<long?> ComputeStablePositionAsync()
    {
        await Task.Yield(); // never run the database calls under the gate
        await using var connection = await _dataSource.OpenConnectionAsync();
        var known = Volatile.Read(ref _stablePosition);
        return await ChangeLogWatermark.StablePositionAsync(connection, StableWait, CancellationToken.None, knownStable: known) is { } position
            ? RaiseStablePosition(position)
            : null;
    }
}
