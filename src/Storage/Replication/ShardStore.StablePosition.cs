namespace Geo.Storage;

public sealed partial class ShardStore
{
    /// <summary>
    /// The change log's stable position as of a moment after this call began, computed once for all concurrent callers
    /// (<see cref="SharedObservation{T}"/>): every sender of a shard (one per peer) reads at the tail when the shard's
    /// NOTIFY wakes them, and each computing its own position meant one observation and one xmin poll loop per sender.
    /// Null when a writer that was running did not end within <see cref="StableWait"/>.
    /// </summary>
    private Task<long?> SharedStablePositionAsync(CancellationToken ct) => _stableObservation.GetAsync(ct);

    // Not cancelled by any one caller: the others wait for it too. Bounded by StableWait and the command timeout.
    private async Task<long?> ComputeStablePositionAsync(Action observing)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        var known = Volatile.Read(ref _stablePosition);
        observing();
        return await ChangeLogWatermark.StablePositionAsync(connection, StableWait, CancellationToken.None, knownStable: known) is { } position
            ? RaiseStablePosition(position)
            : null;
    }
}
