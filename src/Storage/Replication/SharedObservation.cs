namespace Geo.Storage;

/// <summary>
/// One computation at a time of a value that must be observed after its callers arrived (the change log's stable
/// position): a caller joins the running computation while that one has not yet taken its observation, since the
/// observation will then follow the caller's arrival; a caller that arrives after it did joins the next computation,
/// which starts when the running one ends. Callers woken by the same event (a shard's senders by its NOTIFY) arrive
/// together and share one computation.
/// </summary>
/// <param name="compute">Computes the value; calls its argument immediately before it takes its observation.</param>
internal sealed class SharedObservation<T>(Func<Action, Task<T>> compute)
{
    private readonly Lock _gate = new();
    private Task<T>? _running;
    private bool _observed;
    private Task<T>? _next;

    /// <summary>A value observed after this call began. <paramref name="ct"/> cancels this caller's wait, not the computation.</summary>
    public Task<T> GetAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            if (_running is null || _running.IsCompleted)
            {
                return StartLocked().WaitAsync(ct);
            }

            if (!_observed)
            {
                return _running.WaitAsync(ct);
            }

            _next ??= AfterRunningAsync(_running);
            return _next.WaitAsync(ct);
        }
    }

    private Task<T> StartLocked()
    {
        _observed = false;
        _next = null;
        return _running = RunAsync();
    }

    private async Task<T> RunAsync()
    {
        await Task.Yield(); // never compute under the gate
        return await compute(() =>
        {
            lock (_gate)
            {
                _observed = true;
            }
        });
    }

    private async Task<T> AfterRunningAsync(Task<T> running)
    {
        await ((Task)running).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Task<T> next;
        lock (_gate)
        {
            next = StartLocked();
        }

        return await next;
    }
}
