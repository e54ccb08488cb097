using Geo.Core.Clock;
using Geo.Core.Versioning;
using Microsoft.Extensions.Time.Testing;

namespace Geo.Storage.Tests;

/// <summary>The window of the local log's tail that a shard's senders share (no database: the reads are counted).</summary>
public sealed class RecentChangesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Senders_that_reach_the_tail_together_share_one_read_and_get_the_same_entries()
    {
        var window = new RecentChanges(TimeProvider.System);
        var log = Enumerable.Range(1, 30).Select(seq => Change(seq, $"user-{seq % 4}")).ToList();
        var reads = 0;
        var release = new TaskCompletionSource();
        async Task<List<ShardChange>> Read(long after, long upto, int take)
        {
            Interlocked.Increment(ref reads);
            await release.Task;
            return Range(log, after, upto, take);
        }

        Assert.True(window.TryTake(0, 50, [])); // The first sender starts the window at its position.
        var senders = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            await window.ExtendAsync(30, Read, Ct);
            var taken = new List<ShardChange>();
            Assert.True(window.TryTake(0, 50, taken));
            return taken;
        }, Ct)).ToArray();
        await Task.Delay(50, Ct); // all three are waiting for the fill
        release.SetResult();

        foreach (var taken in await Task.WhenAll(senders))
        {
            Assert.Equal(log.Select(c => c.Seq), taken.Select(c => c.Seq));
        }

        Assert.Equal(1, reads);
        Assert.Equal(30, window.To);

        // A sender further on takes only what follows it, up to its limit.
        var next = new List<ShardChange>();
        Assert.True(window.TryTake(25, 3, next));
        Assert.Equal([26L, 27L, 28L], next.Select(c => c.Seq));
    }

    [Fact]
    public async Task A_local_erase_drops_the_users_earlier_entries_as_the_log_did()
    {
        var window = new RecentChanges(TimeProvider.System);
        List<ShardChange> log = [Change(1, "erased"), Change(2, "kept"), Change(3, "erased"), Change(4, "erased", ChangeKind.UserErase), Change(5, "kept")];
        Assert.True(window.TryTake(0, 10, []));
        await window.ExtendAsync(5, ReaderOf(log), Ct);

        var taken = new List<ShardChange>();
        Assert.True(window.TryTake(0, 10, taken));
        Assert.Equal([2L, 4L, 5L], taken.Select(c => c.Seq));
    }

    [Fact]
    public async Task Entries_leave_the_window_after_its_age_bound_and_a_sender_behind_it_reads_the_log()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var window = new RecentChanges(time);
        var log = Enumerable.Range(1, 5).Select(seq => Change(seq, "user")).ToList();
        Assert.True(window.TryTake(0, 10, []));
        await window.ExtendAsync(5, ReaderOf(log), Ct);
        Assert.True(window.TryTake(0, 10, []));

        time.Advance(RecentChanges.MaxAge + TimeSpan.FromSeconds(1));
        Assert.False(window.TryTake(0, 10, []));
        var atTail = new List<ShardChange>();
        Assert.True(window.TryTake(5, 10, atTail)); // a sender at the end is still served (nothing to give it)
        Assert.Empty(atTail);
    }

    [Fact]
    public async Task A_full_page_ends_the_window_at_its_last_entry_and_the_next_fill_goes_on_from_there()
    {
        var window = new RecentChanges(TimeProvider.System);
        var log = Enumerable.Range(1, RecentChanges.FillRows + 10).Select(seq => Change(seq, "user")).ToList();
        var read = ReaderOf(log);
        Assert.True(window.TryTake(0, 10, []));

        await window.ExtendAsync(log.Count, read, Ct);
        Assert.Equal(RecentChanges.FillRows, window.To);
        await window.ExtendAsync(log.Count, read, Ct);
        Assert.Equal(log.Count, window.To);
        var taken = new List<ShardChange>();
        Assert.True(window.TryTake(RecentChanges.FillRows - 5, 100, taken));
        Assert.Equal(Enumerable.Range(RecentChanges.FillRows - 4, 15).Select(i => (long)i), taken.Select(c => c.Seq));
    }

    // The window's read of the log, over an in-memory log: entries in (after, upto], at most take.
    private static Func<long, long, int, Task<List<ShardChange>>> ReaderOf(List<ShardChange> log) => (after, upto, take) => Task.FromResult(Range(log, after, upto, take));

    private static List<ShardChange> Range(List<ShardChange> log, long after, long upto, int take) => [.. log.Where(c => c.Seq > after && c.Seq <= upto).Take(take)];

    private static ShardChange Change(long seq, string user, ChangeKind kind = ChangeKind.Document) => new()
    {
        Seq = seq,
        Kind = kind,
        Bucket = 0,
        UserId = user,
        Collection = kind == ChangeKind.Document ? "docs" : null,
        Key = kind == ChangeKind.Document ? $"k{seq}" : null,
        Body = kind == ChangeKind.Document ? "{}" : null,
        Version = new DataVersion(new HlcTimestamp(seq), "us-east"),
        Origin = "us-east",
    };
}
