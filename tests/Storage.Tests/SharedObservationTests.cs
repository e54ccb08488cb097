namespace Geo.Storage.Tests;

/// <summary>How concurrent callers share one computation of the stable position (no database: the computations are scripted).</summary>
public sealed class SharedObservationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_caller_joins_the_running_computation_until_it_observes_and_the_next_one_after_that()
    {
        var computations = 0;
        var mayObserve = new TaskCompletionSource();
        var observed = new TaskCompletionSource();
        var firstEnds = new TaskCompletionSource<int>();
        var shared = new SharedObservation<int>(async observing =>
        {
            var n = Interlocked.Increment(ref computations);
            if (n > 1)
            {
                observing();
                return 100 + n;
            }

            await mayObserve.Task;
            observing();
            observed.SetResult();
            return await firstEnds.Task;
        });

        var first = shared.GetAsync(Ct);
        var beforeObservation = shared.GetAsync(Ct); // the first has not observed yet: its observation follows this call
        mayObserve.SetResult();
        await observed.Task.WaitAsync(Ct);
        var afterObservation = shared.GetAsync(Ct); // it observed before this call: it needs the next computation
        var alsoAfter = shared.GetAsync(Ct);
        Assert.False(afterObservation.IsCompleted);
        firstEnds.SetResult(1);

        Assert.Equal(1, await first);
        Assert.Equal(1, await beforeObservation);
        Assert.Equal(102, await afterObservation);
        Assert.Equal(102, await alsoAfter); // callers that arrived during one observation share the next
        Assert.Equal(2, computations);

        Assert.Equal(103, await shared.GetAsync(Ct)); // nothing running: a new one
    }
}
