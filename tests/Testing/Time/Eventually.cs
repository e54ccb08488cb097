using System.Diagnostics;

namespace Geo.Testing.Time;

/// <summary>Waits for a condition that the system under test makes true in its own time.</summary>
public static class Eventually
{
    /// <summary>
    /// Checks <paramref name="condition"/> every <paramref name="pollMilliseconds"/> until it holds; fails with
    /// <paramref name="failure"/> once <paramref name="timeout"/> passed. Returns how long it took.
    /// </summary>
    /// <exception cref="TimeoutException">The condition did not hold within <paramref name="timeout"/>.</exception>
    public static async Task<TimeSpan> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string failure, CancellationToken ct, int pollMilliseconds = 20)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var started = Stopwatch.StartNew();
        while (!await condition())
        {
            if (started.Elapsed >= timeout)
            {
                throw new TimeoutException($"{failure} (waited {timeout.TotalSeconds:0.#} s)");
            }

            await Task.Delay(pollMilliseconds, ct);
        }

        return started.Elapsed;
    }
}
