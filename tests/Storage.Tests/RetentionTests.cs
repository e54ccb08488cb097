using Geo.Storage.Retention;
using Geo.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Geo.Storage.Tests;

/// <summary>
/// Retention on a fake clock (Retention/ShardRetention.cs, Retention/ChangeLogPruner.cs): idempotency records,
/// conflict-log entries and tombstones go on schedule and not before; a collected tombstone never comes back; the
/// change log is pruned per replica set. Each test has its own pair of shard databases, so no other test's rows hold
/// its horizons back.
/// </summary>
public sealed class RetentionTests(PostgresServer server)
{
    private static readonly RetentionOptions Options = new()
    {
        ConflictRetention = TimeSpan.FromDays(30),
        TombstoneGrace = TimeSpan.FromDays(7),
        BatchSize = 10,
        MaxBatchesPerPass = 3,
    };

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Idempotency_records_go_once_expired_and_not_before()
    {
        await using var regions = await RegionsAsync();
        var east = regions.East.Store("us-east", _time);
        var retention = new ShardRetention(east, Options, _time);
        var user = ShardDatabase.NewUserId();
        var begin = await east.BeginIdempotentAsync(user, "key-1", [1, 2, 3], TimeSpan.FromHours(24), Ct);
        await east.PutDocumentAsync(user, "docs", "a", "1", idempotency: new(begin.Claim!, r => new IdempotentResponse(200, null, new Dictionary<string, string>())), ct: Ct);

        _time.Advance(TimeSpan.FromHours(23));
        Assert.Equal(0, (await retention.RunOnceAsync(ct: Ct)).Idempotency);
        Assert.Equal(1, await CountAsync(regions.East, "idempotency", user));

        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1, (await retention.RunOnceAsync(ct: Ct)).Idempotency);
        Assert.Equal(0, await CountAsync(regions.East, "idempotency", user));
    }

    [Fact]
    public async Task A_pass_removes_at_most_its_cap_and_the_next_passes_finish()
    {
        await using var regions = await RegionsAsync();
        var east = regions.East.Store("us-east", _time);
        var retention = new ShardRetention(east, Options, _time);
        var user = ShardDatabase.NewUserId();
        for (var i = 0; i < 45; i++)
        {
            await east.BeginIdempotentAsync(user, $"key-{i}", [1], TimeSpan.FromMinutes(1), Ct);
        }

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(30, (await retention.RunOnceAsync(ct: Ct)).Idempotency); // 3 batches of 10.
        Assert.Equal(15, (await retention.RunOnceAsync(ct: Ct)).Idempotency);
        Assert.Equal(0, await CountAsync(regions.East, "idempotency", user));
    }

    [Fact]
    public async Task Conflict_entries_go_after_the_retention_period_and_not_before()
    {
        await using var regions = await RegionsAsync();
        var east = regions.East.Store("us-east", _time);
        var west = regions.West.Store("us-west", _time);
        var retention = new ShardRetention(east, Options, _time);
        var user = ShardDatabase.NewUserId();
        await west.PutDocumentAsync(user, "docs", "k", """{"w":1}""", ct: Ct);
        await east.PutDocumentAsync(user, "docs", "k", """{"e":1}""", ct: Ct);
        await east.ApplyRemoteAsync(await ChangesOfAsync(west, user), ct: Ct);
        Assert.Equal(1, await CountAsync(regions.East, "conflicts", user));

        _time.Advance(TimeSpan.FromDays(29));
        Assert.Equal(0, (await retention.RunOnceAsync(ct: Ct)).Conflicts);
        Assert.Equal(1, await CountAsync(regions.East, "conflicts", user));

        _time.Advance(TimeSpan.FromDays(1) + TimeSpan.FromSeconds(1));
        Assert.Equal(1, (await retention.RunOnceAsync(ct: Ct)).Conflicts);
        Assert.Equal(0, await CountAsync(regions.East, "conflicts", user));
    }

    [Fact]
    public async Task A_tombstone_goes_once_every_replica_acknowledged_it_and_the_grace_period_passed()
    {
        await using var regions = await RegionsAsync();
        var east = regions.East.Store("us-east", _time);
        var retention = new ShardRetention(east, Options, _time);
        var pruner = new ChangeLogPruner(east);
        var user = ShardDatabase.NewUserId();
        await east.PutDocumentAsync(user, "docs", "k", "1", ct: Ct);
        await east.DeleteDocumentAsync(user, "docs", "k", ct: Ct);

        _time.Advance(TimeSpan.FromDays(6));
        await AcknowledgeAsync(east, pruner);
        Assert.Equal(0, (await retention.RunOnceAsync(ct: Ct)).Tombstones); // acknowledged, inside the grace period

        // A later tombstone no replica has acknowledged yet: past the grace period it stays; the older, acknowledged one goes.
        await east.PutDocumentAsync(user, "docs", "j", "1", ct: Ct);
        await east.DeleteDocumentAsync(user, "docs", "j", ct: Ct);
        _time.Advance(TimeSpan.FromDays(8));
        Assert.Equal(1, (await retention.RunOnceAsync(ct: Ct)).Tombstones);
        Assert.Equal(["j"], await regions.East.QueryAsync<string>("SELECT key FROM documents WHERE user_id = @user", new { user }));

        await AcknowledgeAsync(east, pruner);
        Assert.Equal(1, (await retention.RunOnceAsync(ct: Ct)).Tombstones);
        Assert.Equal(0, await CountAsync(regions.East, "documents", user));
    }

    [Fact]
    public async Task A_late_replica_delivering_an_older_write_after_collection_does_not_bring_the_document_back()
    {
        await using var regions = await RegionsAsync();
        var east = regions.East.Store("us-east", _time);
        var west = regions.West.Store("us-west", _time);
        var retention = new ShardRetention(east, Options, _time);
        var user = ShardDatabase.NewUserId();

        // us-west writes the key; its replicator is late: east has not seen the write.
        await west.PutDocumentAsync(user, "docs", "k", """{"late":1}""", ct: Ct);
        var late = await ChangesOfAsync(west, user);
        _time.Advance(TimeSpan.FromSeconds(1));
        await east.PutDocumentAsync(user, "docs", "k", """{"east":1}""", ct: Ct);
        await east.DeleteDocumentAsync(user, "docs", "k", ct: Ct);
        await AcknowledgeAsync(east, new ChangeLogPruner(east));
        _time.Advance(Options.TombstoneGrace + TimeSpan.FromMinutes(1));
        Assert.Equal(1, (await retention.RunOnceAsync(ct: Ct)).Tombstones);
        Assert.Equal(0, await CountAsync(regions.East, "documents", user));

        // The late write arrives (stream or anti-entropy): older than the collected tombstone, it is skipped.
        Assert.Equal([ApplyOutcome.Skipped], await east.ApplyRemoteAsync(late, ct: Ct));
        Assert.Null(await east.GetDocumentAsync(user, "docs", "k", Ct));
        Assert.Equal(0, await CountAsync(regions.East, "documents", user));

        // A write made after the delete still applies: the floor holds back only what is older.
        await west.PutDocumentAsync(user, "docs", "k", """{"new":1}""", ct: Ct);
        var newer = (await ChangesOfAsync(west, user))[^1];
        Assert.Equal([ApplyOutcome.Applied], await east.ApplyRemoteAsync([newer], ct: Ct));
        Assert.Equal("""{"new": 1}""", (await east.GetDocumentAsync(user, "docs", "k", Ct))!.Body);
    }

    [Fact]
    public async Task An_outage_of_the_other_jurisdiction_does_not_stop_pruning_of_this_jurisdictions_users()
    {
        await using var regions = await RegionsAsync();
        var east = regions.East.Store("us-east", _time);
        var pruner = new ChangeLogPruner(east, pageSize: 4, maxPagesPerPass: 3);
        var usUser = ShardDatabase.NewUserId();
        var globalUser = ShardDatabase.NewUserId();
        for (var i = 0; i < 10; i++)
        {
            await east.PutDocumentAsync(usUser, "docs", $"u{i}", "1", ct: Ct);
            await east.PutDocumentAsync(globalUser, "docs", $"g{i}", "1", ct: Ct);
        }

        var stable = await east.StableChangePositionAsync(TimeSpan.FromSeconds(10), Ct) ?? throw new InvalidOperationException("no stable position");
        // us-west acknowledged everything; eu-west and eu-central are down (acknowledged nothing).
        var acked = new Dictionary<string, long> { ["us-west"] = stable, ["eu-west"] = 0, ["eu-central"] = 0 };
        ValueTask<IReadOnlyCollection<string>?> Peers(string user, CancellationToken _) =>
            ValueTask.FromResult<IReadOnlyCollection<string>?>(user == usUser ? ["us-west"] : user == globalUser ? ["us-west", "eu-west", "eu-central"] : null);

        var removed = 0;
        for (var pass = 0; pass < 3; pass++)
        {
            removed += (await pruner.PruneAsync(acked, Peers, Ct)).ByReplicaSet;
        }

        Assert.Equal(10, removed);
        Assert.Equal(0, await CountAsync(regions.East, "change_log", usUser));
        Assert.Equal(10, await CountAsync(regions.East, "change_log", globalUser));

        // eu comes back and acknowledges: the rest goes (the common prefix).
        acked["eu-west"] = acked["eu-central"] = stable;
        Assert.Equal(10, (await pruner.PruneAsync(acked, Peers, Ct)).Prefix);
        Assert.Equal(0, await CountAsync(regions.East, "change_log", globalUser));
    }

    [Fact]
    public async Task An_entry_of_a_user_the_pruner_cannot_place_stays()
    {
        await using var regions = await RegionsAsync();
        var east = regions.East.Store("us-east", _time);
        var user = ShardDatabase.NewUserId();
        await east.PutDocumentAsync(user, "docs", "a", "1", ct: Ct);
        var stable = await east.StableChangePositionAsync(TimeSpan.FromSeconds(10), Ct) ?? 0;
        var pass = await new ChangeLogPruner(east).PruneAsync(new Dictionary<string, long> { ["us-west"] = stable, ["eu-west"] = 0 },
            (_, _) => ValueTask.FromResult<IReadOnlyCollection<string>?>(null), Ct);

        Assert.Equal(0, pass.ByReplicaSet);
        Assert.Equal(1, await CountAsync(regions.East, "change_log", user));
    }

    /// <summary>Every peer acknowledged everything stable now (one peer, us-west, for every user).</summary>
    private static async Task AcknowledgeAsync(ShardStore store, ChangeLogPruner pruner)
    {
        var stable = await store.StableChangePositionAsync(TimeSpan.FromSeconds(10), Ct) ?? throw new InvalidOperationException("no stable position");
        await pruner.PruneAsync(new Dictionary<string, long> { ["us-west"] = stable },
            (_, _) => ValueTask.FromResult<IReadOnlyCollection<string>?>(["us-west"]), Ct);
    }

    private async Task<TwoRegions> RegionsAsync()
    {
        var regions = new TwoRegions(server);
        await regions.InitializeAsync();
        return regions;
    }

    private static async Task<List<ShardChange>> ChangesOfAsync(ShardStore store, string user) =>
        [.. (await store.ReadChangesAsync(0, 100_000, store.RegionId, ct: Ct)).Where(c => c.UserId == user)];

    private static Task<long> CountAsync(ShardDatabase db, string table, string user) =>
        db.ScalarAsync<long>($"SELECT count(*) FROM {table} WHERE user_id = @user", new { user });
}
