using System.Collections.Concurrent;
using Geo.Core.Versioning;

namespace Geo.Storage.Tests;

public sealed class ConcurrencyTests(ShardDatabase db) : IClassFixture<ShardDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Concurrent_writers_on_two_connections_lose_no_update_and_log_each_write_in_commit_order()
    {
        // Two stores with separate pools and separate clocks (as two API processes in one region would have).
        var stores = new[] { db.Store(dataSource: db.NewDataSource()), db.Store(dataSource: db.NewDataSource()) };
        var user = ShardDatabase.NewUserId();
        const int writesPerWriter = 60;
        var acknowledged = new ConcurrentBag<(string Body, DataVersion Version)>();

        await Task.WhenAll(Enumerable.Range(0, 4).Select(writer => Task.Run(async () =>
        {
            for (var i = 0; i < writesPerWriter; i++)
            {
                var body = $$"""{"v": "{{writer}}-{{i}}"}""";
                var result = await stores[writer % 2].PutDocumentAsync(user, "race", "k", body, ct: Ct);
                acknowledged.Add((body, result.Version!.Value));
            }
        }, Ct)));

        var log = (await stores[0].ReadChangesAsync(0, 100_000, ct: Ct)).Where(c => c.UserId == user).ToList();
        Assert.Equal(4 * writesPerWriter, log.Count);
        Assert.Equal(4 * writesPerWriter, acknowledged.Select(a => a.Version).Distinct().Count());
        Assert.Equal(acknowledged.Select(a => a.Version).Order().ToList(), log.Select(c => c.Version).ToList()); // seq order == version order
        for (var i = 1; i < log.Count; i++)
        {
            Assert.True(log[i].Seq > log[i - 1].Seq);
            Assert.Equal(log[i - 1].Version, log[i].PreviousVersion); // each write saw the one before it: no lost update
        }

        var final = await stores[1].GetDocumentAsync(user, "race", "k", Ct);
        Assert.Equal(log[^1].Version, final!.Version);
        Assert.Equal(acknowledged.Single(a => a.Version == final.Version).Body, final.Body);
    }

    [Fact]
    public async Task Concurrent_first_writes_of_a_new_key_create_it_once()
    {
        var stores = new[] { db.Store(dataSource: db.NewDataSource()), db.Store(dataSource: db.NewDataSource()) };
        var user = ShardDatabase.NewUserId();

        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => stores[i % 2].PutDocumentAsync(user, "race", "new", $"{i}", ct: Ct)));

        Assert.Single(results, r => r.Outcome == DocumentWriteOutcome.Created);
        Assert.Equal(16, results.Select(r => r.Version).Distinct().Count());
    }

    [Fact]
    public async Task Concurrent_counter_increments_are_all_counted()
    {
        var stores = new[] { db.Store(dataSource: db.NewDataSource()), db.Store(dataSource: db.NewDataSource()) };
        var user = ShardDatabase.NewUserId();

        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => stores[i % 2].IncrementCounterAsync(user, "hits", i % 4 == 0 ? -1 : 2, ct: Ct)));

        Assert.Equal((30 * 2) - 10, await stores[0].GetCounterAsync(user, "hits", Ct));
        var log = (await stores[0].ReadChangesAsync(0, 100_000, ct: Ct)).Where(c => c.UserId == user).ToList();
        Assert.Equal(40, log.Count);
        Assert.Equal((60L, 10L), (log[^1].Increments, log[^1].Decrements));
    }

    [Fact]
    public async Task A_reader_following_the_change_log_during_concurrent_writes_never_skips_an_entry()
    {
        // Without commit-ordered sequence numbers a reader can pass a seq whose transaction commits later.
        var store = db.Store();
        var start = await db.ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM change_log");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var writer = db.Store(dataSource: db.NewDataSource());
            for (var i = 0; i < 100; i++)
            {
                await writer.PutDocumentAsync(ShardDatabase.NewUserId(), "log", $"{w}-{i}", "{}", ct: Ct);
            }
        }, Ct)).ToArray();

        var read = new List<long>();
        var after = start;
        var all = Task.WhenAll(writers);
        while (true)
        {
            var done = all.IsCompleted;
            var batch = await store.ReadChangesAsync(after, 50, ct: Ct);
            read.AddRange(batch.Select(c => c.Seq));
            after = batch.Count > 0 ? batch[^1].Seq : after;
            if (done && batch.Count == 0)
            {
                break;
            }
        }

        await all;
        var committed = await db.QueryAsync<long>("SELECT seq FROM change_log WHERE seq > @start ORDER BY seq", new { start });
        Assert.Equal(800, committed.Count);
        Assert.Equal(committed, read);
    }

    [Fact]
    public async Task Senders_sharing_the_tail_window_during_concurrent_writes_each_get_every_entry_once_in_order()
    {
        // Three senders of one shard (one per peer) follow the log through the window they share (RecentChanges), as
        // eu-west's do, with the store listening for the shard's NOTIFYs as the replicator's does (so positions are
        // reused between them); each must see exactly the committed local entries. A sender stops once a read is empty
        // and complete as of a time after the last write: the read's own claim, which this checks.
        var store = db.Store();
        using var listening = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var listener = store.ListenForChangesAsync(() => { }, listening.Token);
        var start = await db.ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM change_log");
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var writer = db.Store(dataSource: db.NewDataSource());
            for (var i = 0; i < 100; i++)
            {
                await writer.PutDocumentAsync(ShardDatabase.NewUserId(), "tail", $"{w}-{i}", "{}", ct: Ct);
            }
        }, Ct)).ToArray();

        var all = Task.WhenAll(writers);
        var senders = Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            var read = new List<long>();
            var after = start;
            DateTimeOffset? doneAt = null;
            while (true)
            {
                doneAt ??= all.IsCompleted ? DateTimeOffset.UtcNow : null;
                var (batch, completeAsOf) = await store.ReadChangesToSendAsync(after, 50, Ct);
                read.AddRange(batch.Select(c => c.Seq));
                after = batch.Count > 0 ? batch[^1].Seq : after;
                if (doneAt is { } done && batch.Count == 0 && completeAsOf > done)
                {
                    return read;
                }
            }
        }, Ct)).ToArray();

        await all;
        var committed = await db.QueryAsync<long>("SELECT seq FROM change_log WHERE seq > @start AND origin = 'us-east' ORDER BY seq", new { start });
        Assert.Equal(800, committed.Count);
        foreach (var read in await Task.WhenAll(senders))
        {
            Assert.Equal(committed, read);
        }

        await listening.CancelAsync();
        await listener;
    }

    [Fact]
    public async Task A_senders_read_reuses_a_recent_stable_position_until_a_notify_arrives()
    {
        var store = db.Store();
        var notified = 0;
        using var listening = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var listener = store.ListenForChangesAsync(() => Interlocked.Increment(ref notified), listening.Token);
        await WaitForAsync(() => Volatile.Read(ref notified) > 0); // listening (it calls once when the LISTEN took effect)
        var after = await db.ScalarAsync<long>("SELECT coalesce(max(seq), 0) FROM change_log");

        var quiet = Volatile.Read(ref notified);
        var first = await store.ReadChangesToSendAsync(after, 50, Ct);
        var again = await store.ReadChangesToSendAsync(after, 50, Ct);
        Assert.NotNull(first.CompleteAsOf);
        Assert.Empty(again.Changes);
        if (Volatile.Read(ref notified) == quiet)
        {
            // Within the reuse bound and with no NOTIFY since, the same observation answers (no new one is taken). On a
            // stalled host the bound may pass between the two reads; then the second is a newer observation.
            Assert.True(again.CompleteAsOf == first.CompleteAsOf || again.CompleteAsOf > first.CompleteAsOf!.Value.AddMilliseconds(250));
        }

        var before = Volatile.Read(ref notified);
        var written = await db.Store(dataSource: db.NewDataSource()).PutDocumentAsync(ShardDatabase.NewUserId(), "tail", "notified", "{}", ct: Ct);
        await WaitForAsync(() => Volatile.Read(ref notified) > before); // its NOTIFY arrived
        var next = await store.ReadChangesToSendAsync(after, 50, Ct);
        Assert.Equal(written.Version, Assert.Single(next.Changes).Version); // a NOTIFY since: a new observation, which covers the write
        Assert.True(next.CompleteAsOf > first.CompleteAsOf);

        await listening.CancelAsync();
        await listener;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(10, Ct);
        }
    }
}
