namespace Geo.Replicator.Sending;

/// <summary>
/// Wakes the senders of one local shard when a change committed there (the shard's LISTEN connection pulses it), so a
/// sender reads at once instead of after its poll interval. Pulses coalesce in each sender (one pending wake-up).
/// </summary>
internal sealed class ChangeSignal
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
