using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Geo.Testing;

namespace Geo.Storage.Tests;

/// <summary>Two regions' copies of one shard, each in its own database.</summary>
public sealed class TwoRegions(PostgresServer server) : IAsyncLifetime
{
    public ShardDatabase East { get; } = new(server);

    public ShardDatabase West { get; } = new(server);

    public async ValueTask InitializeAsync()
    {
        await East.InitializeAsync();
        await West.InitializeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await East.DisposeAsync();
        await West.DisposeAsync();
    }
}

public sealed class ReplicationTests(TwoRegions regions) : IClassFixture<TwoRegions>
{
    private readonly ShardStore _east = regions.East.Store("us-east");
    private readonly ShardStore _west = regions.West.Store("us-west");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Applying_the_same_changes_twice_changes_nothing_the_second_time()
    {
        var user = ShardDatabase.NewUserId();
        await _west.PutDocumentAsync(user, "docs", "a", """{"a":1}""", ct: Ct);
        await _west.PutDocumentAsync(user, "docs", "b", """{"b":1}""", ct: Ct);
        await _west.DeleteDocumentAsync(user, "docs", "b", ct: Ct);
        await _west.IncrementCounterAsync(user, "c", 3, ct: Ct);
        await _west.IncrementCounterAsync(user, "c", -1, ct: Ct);
        await _east.PutDocumentAsync(user, "docs", "local", "1", ct: Ct);
        var changes = await ChangesOfAsync(_west, user, "us-west");

        var first = await _east.ApplyRemoteAsync(changes, ct: Ct);
        var snapshot = await SnapshotAsync(regions.East, user);
        var second = await _east.ApplyRemoteAsync(changes, ct: Ct);

        Assert.Equal([ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Applied], first);
        Assert.All(second, o => Assert.Equal(ApplyOutcome.Skipped, o));
        Assert.Equal(snapshot, await SnapshotAsync(regions.East, user));
        Assert.Equal(2, await _east.GetCounterAsync(user, "c", Ct));
        Assert.Equal("""{"a": 1}""", (await _east.GetDocumentAsync(user, "docs", "a", Ct))!.Body);
        Assert.Null(await _east.GetDocumentAsync(user, "docs", "b", Ct));
        Assert.Empty(await ConflictsOfAsync(_east, user));

        // Applied changes are logged with their remote origin: kept for moves, never shipped again.
        Assert.Single(await ChangesOfAsync(_east, user, "us-east"));
        Assert.Equal(5, (await ChangesOfAsync(_east, user, "us-west")).Count);
    }

    [Fact]
    public async Task A_newer_remote_value_wins_and_the_overwritten_local_value_is_logged()
    {
        var user = ShardDatabase.NewUserId();
        var local = await _east.PutDocumentAsync(user, "docs", "k", """{"from":"east"}""", ct: Ct);
        var remote = Doc(user, "k", """{"from":"west"}""", At(local.Version!.Value, +1000, "us-west"));

        Assert.Equal([ApplyOutcome.Applied], await _east.ApplyRemoteAsync([remote], ct: Ct));

        var doc = await _east.GetDocumentAsync(user, "docs", "k", Ct);
        Assert.Equal((remote.Version, """{"from": "west"}"""), (doc!.Version, doc.Body));
        var conflict = Assert.Single(await ConflictsOfAsync(_east, user));
        Assert.Equal((remote.Version, local.Version!.Value, """{"from": "east"}""", false), (conflict.Winner, conflict.Loser, conflict.LoserBody, conflict.LoserDeleted));
    }

    [Fact]
    public async Task An_older_remote_value_loses_and_is_logged_as_the_loser()
    {
        var user = ShardDatabase.NewUserId();
        var local = await _east.PutDocumentAsync(user, "docs", "k", """{"from":"east"}""", ct: Ct);
        var remote = Doc(user, "k", """{"from":"west"}""", At(local.Version!.Value, -1000, "us-west"));

        Assert.Equal([ApplyOutcome.Skipped], await _east.ApplyRemoteAsync([remote], ct: Ct));
        Assert.Equal([ApplyOutcome.Skipped], await _east.ApplyRemoteAsync([remote], ct: Ct));

        Assert.Equal(local.Version, (await _east.GetDocumentAsync(user, "docs", "k", Ct))!.Version);
        var conflict = Assert.Single(await ConflictsOfAsync(_east, user)); // logged once despite redelivery
        Assert.Equal((local.Version!.Value, remote.Version, """{"from": "west"}"""), (conflict.Winner, conflict.Loser, conflict.LoserBody));
    }

    [Fact]
    public async Task A_local_write_replaced_by_a_third_regions_history_that_arrives_out_of_order_is_logged()
    {
        // us-east writes a; us-south writes p (never saw a); us-west applies p and writes c over it; c reaches us-east
        // before p does. c's writer replaced p, not a: us-east cannot see that a was lost unless it logs this case.
        var user = ShardDatabase.NewUserId();
        var a = (await _east.PutDocumentAsync(user, "docs", "k", """{"from":"east"}""", ct: Ct)).Version!.Value;
        var p = At(a, +10, "us-south");
        var c = Doc(user, "k", """{"from":"west"}""", At(a, +20, "us-west")) with { PreviousVersion = p };

        Assert.Equal([ApplyOutcome.Applied, ApplyOutcome.Skipped], await _east.ApplyRemoteAsync([c, Doc(user, "k", """{"from":"south"}""", p)], ct: Ct));
        var conflict = Assert.Single(await ConflictsOfAsync(_east, user));
        Assert.Equal((c.Version, a), (conflict.Winner, conflict.Loser));
    }

    [Fact]
    public async Task A_local_write_overwritten_by_an_anti_entropy_row_whose_region_replaced_its_own_later_value_is_logged()
    {
        // us-east writes a; us-west writes q (never saw a, q newer) and then d over q. Anti-entropy brings only d, the
        // peer's current row: q never reaches us-east, so nothing here met a except d. In stream order q would come first
        // and its apply would log a; out of order the overwrite by d must be logged itself.
        var user = ShardDatabase.NewUserId();
        var a = (await _east.PutDocumentAsync(user, "docs", "k", """{"from":"east"}""", ct: Ct)).Version!.Value;
        var q = At(a, +10, "us-west");
        var d = Doc(user, "k", """{"from":"west"}""", At(a, +20, "us-west")) with { PreviousVersion = q };

        Assert.Equal([ApplyOutcome.Applied], await _east.ApplyRemoteAsync([d], ct: Ct, outOfOrder: true));
        var conflict = Assert.Single(await ConflictsOfAsync(_east, user));
        Assert.Equal((d.Version, a), (conflict.Winner, conflict.Loser));

        // q arriving afterwards by the stream was replaced by d knowingly: no second entry.
        Assert.Equal([ApplyOutcome.Skipped], await _east.ApplyRemoteAsync([Doc(user, "k", """{"from":"west","q":1}""", q)], ct: Ct));
        Assert.Single(await ConflictsOfAsync(_east, user));
    }

    [Fact]
    public async Task A_remote_write_that_saw_the_local_value_is_a_fast_forward_not_a_conflict()
    {
        var user = ShardDatabase.NewUserId();
        var local = await _east.PutDocumentAsync(user, "docs", "k", "1", ct: Ct);
        var remote = Doc(user, "k", "2", At(local.Version!.Value, +10, "us-west")) with { PreviousVersion = local.Version };
        var stale = Doc(user, "k", "0", At(local.Version!.Value, -10, "us-east"));

        Assert.Equal([ApplyOutcome.Applied, ApplyOutcome.Skipped], await _east.ApplyRemoteAsync([remote, stale], ct: Ct));
        Assert.Empty(await ConflictsOfAsync(_east, user));
    }

    [Fact]
    public async Task Tombstones_and_updates_race_by_version()
    {
        var user = ShardDatabase.NewUserId();
        var a = await _east.PutDocumentAsync(user, "docs", "a", """{"v":1}""", ct: Ct);
        var b = await _east.PutDocumentAsync(user, "docs", "b", """{"v":1}""", ct: Ct);
        var newerTombstone = Doc(user, "a", null, At(a.Version!.Value, +500, "us-west"));
        var olderTombstone = Doc(user, "b", null, At(b.Version!.Value, -500, "us-west"));

        Assert.Equal([ApplyOutcome.Applied, ApplyOutcome.Skipped], await _east.ApplyRemoteAsync([newerTombstone, olderTombstone], ct: Ct));

        Assert.Null(await _east.GetDocumentAsync(user, "docs", "a", Ct));
        Assert.NotNull(await _east.GetDocumentAsync(user, "docs", "b", Ct));
        var conflicts = await ConflictsOfAsync(_east, user);
        Assert.Contains(conflicts, c => c.Key == "a" && c.WinnerDeleted && !c.LoserDeleted);
        Assert.Contains(conflicts, c => c.Key == "b" && !c.WinnerDeleted && c.LoserDeleted);

        // A local write after the tombstone arrived revives the document with a newer version.
        var revived = await _east.PutDocumentAsync(user, "docs", "a", """{"v":2}""", ct: Ct);
        Assert.True(revived.Version > newerTombstone.Version);
        Assert.Equal(DocumentWriteOutcome.Created, revived.Outcome);
    }

    [Fact]
    public async Task Counter_components_merge_by_max_in_any_order()
    {
        var user = ShardDatabase.NewUserId();
        await _east.IncrementCounterAsync(user, "c", 10, ct: Ct);
        var v = new DataVersion(HlcTimestamp.From(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 0), "us-west");
        var later = Counter(user, "c", "us-west", 5, 1, v);
        var earlier = Counter(user, "c", "us-west", 3, 2, At(v, -5, "us-west")); // decr grew concurrently: still merges

        Assert.Equal([ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Skipped], await _east.ApplyRemoteAsync([later, earlier, later], ct: Ct));

        Assert.Equal(10 + 5 - 2, await _east.GetCounterAsync(user, "c", Ct));
        // The local component is still this region's own: a local increment adds to it, not to the remote one.
        Assert.Equal(14, await _east.IncrementCounterAsync(user, "c", 1, ct: Ct));
    }

    [Fact]
    public async Task A_change_beyond_the_clock_skew_bound_is_quarantined()
    {
        var user = ShardDatabase.NewUserId();
        var future = new DataVersion(HlcTimestamp.From(DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds(), 0), "us-west");

        Assert.Equal([ApplyOutcome.Quarantined], await _east.ApplyRemoteAsync([Doc(user, "k", "1", future)], ct: Ct));
        Assert.Null(await _east.GetDocumentAsync(user, "docs", "k", Ct));
        Assert.Empty(await ChangesOfAsync(_east, user, null));
    }

    [Fact]
    public async Task Erase_removes_every_row_of_the_user_and_refuses_later_writes_of_any_version_everywhere()
    {
        var user = await UserInAnEmptyBucketAsync();
        var bystander = ShardDatabase.NewUserId();
        await _east.PutDocumentAsync(user, "docs", "a", """{"secret":1}""", ct: Ct);
        await _east.IncrementCounterAsync(user, "c", 7, ct: Ct);
        await _east.PutDocumentAsync(bystander, "docs", "a", "1", ct: Ct);
        await _west.ApplyRemoteAsync(await ChangesOfAsync(_east, user, "us-east"), ct: Ct);
        await _west.IncrementCounterAsync(user, "c", 2, ct: Ct); // concurrent with the erase below
        var staleWestCounter = (await ChangesOfAsync(_west, user, "us-west")).Single();

        var erase = await _east.EraseUserAsync(user, Ct);

        Assert.Null(await _east.GetDocumentAsync(user, "docs", "a", Ct));
        Assert.Equal(0, await _east.GetCounterAsync(user, "c", Ct));
        Assert.NotNull(await _east.GetDocumentAsync(bystander, "docs", "a", Ct));
        Assert.Equal(["marker"], await SnapshotAsync(regions.East, user)); // no tombstone, no body in the change log
        var eraseChange = Assert.Single(await ChangesOfAsync(_east, user, "us-east"));
        Assert.Equal((ChangeKind.UserErase, erase, (string?)null), (eraseChange.Kind, eraseChange.Version, eraseChange.Body));

        // Replicated writes are refused whatever their version: older, and newer than the erase (a racing write).
        var olderPut = Doc(user, "b", "1", At(erase, -1, "us-west"));
        var newerPut = Doc(user, "b", "1", At(erase, +1, "us-west"));
        var newerCounter = Counter(user, "c", "us-west", 100, 0, At(erase, +1, "us-west"));
        Assert.Equal([ApplyOutcome.Skipped, ApplyOutcome.Skipped, ApplyOutcome.Skipped, ApplyOutcome.Skipped],
            await _east.ApplyRemoteAsync([olderPut, staleWestCounter, newerPut, newerCounter], ct: Ct));
        Assert.Equal(["marker"], await SnapshotAsync(regions.East, user));

        // Local writes are refused: the one-round-trip put, the conditional path, a counter, an idempotent write.
        await Assert.ThrowsAsync<UserErasedException>(() => _east.PutDocumentAsync(user, "docs", "x", "1", ct: Ct));
        await Assert.ThrowsAsync<UserErasedException>(() => _east.PutDocumentAsync(user, "docs", "x", "1", WriteCondition.None, ct: Ct));
        await Assert.ThrowsAsync<UserErasedException>(() => _east.DeleteDocumentAsync(user, "docs", "a", ct: Ct));
        await Assert.ThrowsAsync<UserErasedException>(() => _east.IncrementCounterAsync(user, "c", 1, ct: Ct));
        await Assert.ThrowsAsync<UserErasedException>(() => _east.BeginIdempotentAsync(user, "key-1", [1], TimeSpan.FromHours(1), Ct));
        Assert.Equal(["marker"], await SnapshotAsync(regions.East, user));

        // The erase replicates; the other region keeps only the marker too, and both hold the same rows.
        Assert.Equal([ApplyOutcome.Applied], await _west.ApplyRemoteAsync([eraseChange], ct: Ct));
        Assert.Equal(["marker"], await SnapshotAsync(regions.West, user));
        Assert.Equal(0, await _west.GetCounterAsync(user, "c", Ct));
        await Assert.ThrowsAsync<UserErasedException>(() => _west.IncrementCounterAsync(user, "c", 1, ct: Ct));
        var bucket = Buckets.Of(user);
        Assert.Equal(await _east.BucketDigestAsync(bucket, Ct), await _west.BucketDigestAsync(bucket, Ct));
    }

    [Fact]
    public async Task A_batch_with_writes_and_the_erase_of_a_user_leaves_only_the_marker()
    {
        var user = ShardDatabase.NewUserId();
        var erase = new DataVersion(HlcTimestamp.From(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), 0), "us-east");
        var eraseChange = new ShardChange { Kind = ChangeKind.UserErase, Bucket = Buckets.Of(user), UserId = user, Version = erase, Origin = "us-east" };

        var outcomes = await _west.ApplyRemoteAsync([Doc(user, "a", """{"secret":2}""", At(erase, -5, "us-east")), eraseChange, Doc(user, "b", "1", At(erase, +5, "us-east"))], ct: Ct);

        Assert.Equal([ApplyOutcome.Applied, ApplyOutcome.Applied, ApplyOutcome.Skipped], outcomes);
        Assert.Equal(["log user_erase", "marker"], await SnapshotAsync(regions.West, user, withLogKinds: true));
        Assert.Equal([ApplyOutcome.Skipped], await _west.ApplyRemoteAsync([eraseChange], ct: Ct));
    }

    [Fact]
    public async Task A_batch_of_documents_only_for_an_erased_user_is_skipped_whatever_its_versions()
    {
        // The one-round-trip document batch reads the erase markers with its locks: an erased user's documents, even
        // newer than the erase, are never stored again (the replicator also refuses them; this is the shard's own check).
        var user = ShardDatabase.NewUserId();
        var other = ShardDatabase.NewUserId();
        var erase = await _west.EraseUserAsync(user, Ct);

        var outcomes = await _west.ApplyRemoteAsync([Doc(user, "a", "1", At(erase, +5, "us-east")), Doc(other, "a", "2", At(erase, +5, "us-east")), Doc(user, "b", "3", At(erase, +6, "us-east"))], ct: Ct);

        Assert.Equal([ApplyOutcome.Skipped, ApplyOutcome.Applied, ApplyOutcome.Skipped], outcomes);
        Assert.Equal(["log user_erase", "marker"], await SnapshotAsync(regions.West, user, withLogKinds: true));
        Assert.Equal("2", (await _west.GetDocumentAsync(other, "docs", "a", Ct))?.Body);
    }

    [Fact]
    public async Task Checkpoints_only_move_forward_and_can_commit_with_the_apply()
    {
        var user = ShardDatabase.NewUserId();
        var peer = $"us-west-{Guid.NewGuid():N}";
        Assert.Equal(0, await _east.GetCheckpointAsync(peer, "us-west-0", Ct));

        await _east.ApplyRemoteAsync([Doc(user, "k", "1", new DataVersion(HlcTimestamp.From(1_700_000_000_000, 0), "us-west"))],
            new ReplicationCheckpoint(peer, "us-west-0", 42), Ct);
        await _east.SetCheckpointAsync(new ReplicationCheckpoint(peer, "us-west-0", 41), Ct);

        Assert.Equal(42, await _east.GetCheckpointAsync(peer, "us-west-0", Ct));
        await _east.SetCheckpointAsync(new ReplicationCheckpoint(peer, "us-west-0", 50), Ct);
        Assert.Equal(50, await _east.GetCheckpointAsync(peer, "us-west-0", Ct));
    }

    [Fact]
    public async Task Reading_by_bucket_and_pruning_the_log()
    {
        var store = regions.West.Store("us-west", dataSource: regions.West.NewDataSource());
        var users = Enumerable.Range(0, 5).Select(_ => ShardDatabase.NewUserId()).ToList();
        foreach (var u in users)
        {
            await store.PutDocumentAsync(u, "docs", "k", "1", ct: Ct);
        }

        var bucket = Buckets.Of(users[2]);
        var inBucket = await store.ReadChangesAsync(0, 10_000, buckets: [bucket], ct: Ct);
        Assert.Contains(inBucket, c => c.UserId == users[2]);
        Assert.All(inBucket, c => Assert.Equal(bucket, c.Bucket));

        var upto = (await ChangesOfAsync(store, users[3], null)).Single().Seq;
        Assert.True(await store.PruneChangeLogAsync(upto, Ct) >= 4);
        var left = await store.ReadChangesAsync(0, 10_000, ct: Ct);
        Assert.All(left, c => Assert.True(c.Seq > upto));
        Assert.Contains(left, c => c.UserId == users[4]);
    }

    private static DataVersion At(DataVersion reference, long deltaMs, string origin) =>
        new(HlcTimestamp.From(reference.Hlc.Milliseconds + deltaMs, 0), origin);

    private static ShardChange Doc(string user, string key, string? body, DataVersion version) => new()
    {
        Kind = ChangeKind.Document,
        Bucket = Buckets.Of(user),
        UserId = user,
        Collection = "docs",
        Key = key,
        Body = body,
        Deleted = body is null,
        Version = version,
        Origin = version.Origin,
    };

    private static ShardChange Counter(string user, string name, string region, long incr, long decr, DataVersion version) => new()
    {
        Kind = ChangeKind.Counter,
        Bucket = Buckets.Of(user),
        UserId = user,
        CounterName = name,
        CounterRegion = region,
        Increments = incr,
        Decrements = decr,
        Version = version,
        Origin = version.Origin,
    };

    private static async Task<List<ShardChange>> ChangesOfAsync(ShardStore store, string user, string? origin) =>
        [.. (await store.ReadChangesAsync(0, 100_000, origin, ct: Ct)).Where(c => c.UserId == user)];

    private static async Task<List<ConflictRecord>> ConflictsOfAsync(ShardStore store, string user) =>
        [.. (await store.ReadConflictsAsync(0, 10_000, Ct)).Where(c => c.UserId == user)];

    private static Task<List<string>> SnapshotAsync(ShardDatabase db, string user, bool withLogKinds = false) => db.QueryAsync<string>("""
        SELECT 'doc ' || collection || '/' || key || ' ' || coalesce(body::text, '-') || ' ' || version_hlc || version_origin FROM documents WHERE user_id = @user
        UNION ALL SELECT 'counter ' || name || '/' || region || ' ' || incr || ' ' || decr || ' ' || version_hlc FROM counters WHERE user_id = @user
        UNION ALL SELECT CASE WHEN @withLogKinds THEN 'log ' || kind ELSE 'log ' || seq END FROM change_log WHERE user_id = @user AND (@withLogKinds OR kind <> 'user_erase')
        UNION ALL SELECT 'conflict ' || id FROM conflicts WHERE user_id = @user
        UNION ALL SELECT 'idempotency ' || key FROM idempotency WHERE user_id = @user
        UNION ALL SELECT 'marker' FROM erased_users WHERE user_id = @user
        ORDER BY 1
        """, new { user, withLogKinds });

    /// <summary>A user whose bucket holds no rows yet in either region, so bucket digests compare only this test's data.</summary>
    private async Task<string> UserInAnEmptyBucketAsync()
    {
        while (true)
        {
            var user = ShardDatabase.NewUserId();
            var counts = (await _east.BucketRowCountsAsync(Ct)).Concat(await _west.BucketRowCountsAsync(Ct));
            if (!counts.Any(c => c.Key == Buckets.Of(user)))
            {
                return user;
            }
        }
    }
}
