namespace Geo.Storage;

public sealed partial class ShardStore
{
    /// <summary>How long the senders may reuse a stable position while no NOTIFY arrived since it was observed.</summary>
    private static readonly TimeSpan StableReuse = TimeSpan.FromMilliseconds(250);

    private StablePosition? _lastStable;

    /// <summary>A stable position, when its observation began, and how many NOTIFYs the store had received by then.</summary>
    private sealed record StablePosition(long Position, DateTimeOffset ObservedAt, long Notifications);

    /// <summary>
    /// The change log's stable position as of a moment after this call began, computed once for all concurrent callers
    /// (<see cref="SharedObservation{T}"/>): every sender of a shard (one per peer) reads at the tail when the shard's
    /// NOTIFY wakes them, and each computing its own position meant one observation and one xmin poll loop per sender.
    /// Null when a writer that was running did not end within <see cref="StableWait"/>.
    /// </summary>
    private async Task<long?> SharedStablePositionAsync(CancellationToken ct) => (await _stableObservation.GetAsync(ct))?.Position;

    /// <summary>
    /// The senders' stable position. While this store listens for the shard's NOTIFYs (the replicator's senders do), a
    /// position observed less than <see cref="StableReuse"/> ago is still as good as a new one if no NOTIFY arrived
    /// since: a local commit after the observation announces itself, and its NOTIFY makes the next read compute anew.
    /// The senders read again after every acknowledgement, one per peer, so without this each acknowledgement of each
    /// peer cost an observation and its xmin poll. The returned time bounds what the position covers: everything
    /// committed before it (not before this call).
    /// </summary>
    private async Task<StablePosition?> SendersStablePositionAsync(CancellationToken ct)
    {
        if (_listening && _lastStable is { } last && last.Notifications == Volatile.Read(ref _notifications) && _time.GetUtcNow() - last.ObservedAt < StableReuse)
        {
            return last;
        }

        return await _stableObservation.GetAsync(ct);
    }

    // Not cancelled by any one caller: the others wait for it too. Bounded by StableWait and the command timeout.
    private async Task<StablePosition?> ComputeStablePositionAsync(Action observing)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        var known = Volatile.Read(ref _stablePosition);
        var notifications = Volatile.Read(ref _notifications);
        var observedAt = _time.GetUtcNow();
        observing();
        if (await ChangeLogWatermark.StablePositionAsync(connection, StableWait, CancellationToken.None, knownStable: known) is not { } position)
        {
            return null;
        }

        var stable = new StablePosition(RaiseStablePosition(position), observedAt, notifications);
        _lastStable = stable;
        return stable;
    }
}
