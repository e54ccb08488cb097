namespace Geo.Core.Signals;

/// <summary>
/// Wakes whoever waits for a change (a replicator's senders of one shard, pulsed by the shard's LISTEN connection; a
/// directory's user-change watchers, pulsed by its own), so they read at once instead of after a poll interval.
/// Subscribers coalesce pulses themselves (e.g. one pending wake-up).
/// </summary>
public sealed class ChangeSignal
{
    private readonly Lock _gate = new();
    private Action[] _subscribers = [];

    /// <summary>Calls <paramref name="wake"/> on every pulse until the returned handle is disposed.</summary>
    public IDisposable Subscribe(Action wake)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers, wake];
        }

        return new Subscription(this, wake);
    }

    public void Pulse()
    {
        foreach (var wake in Volatile.Read(ref _subscribers))
        {
            wake();
        }
    }

    private void Remove(Action wake)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers.Where(s => s != wake)];
        }
    }

    private sealed class Subscription(ChangeSignal signal, Action wake) : IDisposable
    {
        public void Dispose() => signal.Remove(wake);
    }
}
