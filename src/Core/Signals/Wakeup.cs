using System.Threading.Channels;

namespace Geo.Core.Signals;

/// <summary>
/// One pending wake-up for a loop that sleeps between rounds: <see cref="Set"/> as often as you like (wake-ups that
/// arrive before the loop waits again coalesce into one), <see cref="WaitAsync"/> until one arrives or a timeout passes.
/// </summary>
public sealed class Wakeup
{
    private readonly Channel<bool> _pending = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public void Set() => _pending.Writer.TryWrite(true);

    /// <summary>
    /// Waits for a wake-up (and consumes it) or for <paramref name="timeout"/> on <paramref name="time"/>'s timers.
    /// True when woken, false when the timeout passed; throws when <paramref name="ct"/> is cancelled.
    /// </summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(time);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var delay = Task.Delay(timeout, time, limit.Token);
        var woken = _pending.Reader.WaitToReadAsync(limit.Token).AsTask();
        await Task.WhenAny(delay, woken);
        await limit.CancelAsync();
        ct.ThrowIfCancellationRequested();
        return _pending.Reader.TryRead(out _);
    }
}
