namespace Geo.Core.Clock;

/// <summary>
/// Hybrid logical clock (Kulkarni et al.): never goes backwards even when the wall clock does,
/// advances past every received timestamp, and refuses remote readings too far in the future.
/// Thread-safe.
/// </summary>
public sealed class HybridLogicalClock
{
    private readonly TimeProvider _time;
    private readonly long _maxSkewMs;
    private long _last;

    /// <param name="time">Wall clock source.</param>
    /// <param name="maxSkew">Remote readings more than this ahead of the local wall clock are refused.</param>
    public HybridLogicalClock(TimeProvider time, TimeSpan maxSkew)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxSkew, TimeSpan.Zero);
        _time = time;
        _maxSkewMs = (long)maxSkew.TotalMilliseconds;
    }

    /// <summary>The skew bound in milliseconds.</summary>
    public long MaxSkewMilliseconds => _maxSkewMs;

    /// <summary>The last reading handed out or observed.</summary>
    public HlcTimestamp Current => new(Volatile.Read(ref _last));

    /// <summary>Ticks the clock for a local event and returns a reading greater than every earlier one.</summary>
    public HlcTimestamp Now()
    {
        var wall = WallMilliseconds();
        while (true)
        {
            var last = Volatile.Read(ref _last);
            var next = Advance(new HlcTimestamp(last), wall);
            if (Interlocked.CompareExchange(ref _last, next.Value, last) == last)
            {
                return next;
            }
        }
    }

    /// <summary>
    /// Merges a remote reading: afterwards every local reading is greater than <paramref name="remote"/>.
    /// Returns false, and leaves the clock untouched, when the remote is beyond the skew bound.
    /// </summary>
    public bool TryObserve(HlcTimestamp remote)
    {
        var wall = WallMilliseconds();
        if (IsBeyondSkew(remote, wall))
        {
            return false;
        }

        while (true)
        {
            var last = Volatile.Read(ref _last);
            var target = Math.Max(last, remote.Value);
            if (target == last || Interlocked.CompareExchange(ref _last, target, last) == last)
            {
                return true;
            }
        }
    }

    /// <summary>True when <paramref name="remote"/> is further ahead of the local wall clock than the bound allows.</summary>
    public bool IsBeyondSkew(HlcTimestamp remote) => IsBeyondSkew(remote, WallMilliseconds());

    private bool IsBeyondSkew(HlcTimestamp remote, long wall) => remote.Milliseconds - wall > _maxSkewMs;

    private long WallMilliseconds() => Math.Clamp(_time.GetUtcNow().ToUnixTimeMilliseconds(), 0, HlcTimestamp.MaxMilliseconds);

    private static HlcTimestamp Advance(HlcTimestamp last, long wall)
    {
        if (wall > last.Milliseconds)
        {
            return HlcTimestamp.From(wall, 0);
        }

        // Wall clock stalled or went backwards: keep the last millisecond and count; borrow the next ms on overflow.
        return last.Counter < HlcTimestamp.MaxCounter
            ? HlcTimestamp.From(last.Milliseconds, last.Counter + 1)
            : HlcTimestamp.From(last.Milliseconds + 1, 0);
    }
}
