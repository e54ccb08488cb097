using Geo.Core.Versioning;

namespace Geo.Storage.Tests;

public sealed class DocumentTests(ShardDatabase db) : IClassFixture<ShardDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Put_creates_then_replaces_with_a_strictly_newer_version()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();

        var created = await store.PutDocumentAsync(user, "notes", "a", """{"n":1}""", ct: Ct);
        var replaced = await store.PutDocumentAsync(user, "notes", "a", """{"n":2}""", ct: Ct);

        Assert.Equal(DocumentWriteOutcome.Created, created.Outcome);
        Assert.Equal(DocumentWriteOutcome.Replaced, replaced.Outcome);
        Assert.True(replaced.Version > created.Version);
        var doc = await store.GetDocumentAsync(user, "notes", "a", Ct);
        Assert.NotNull(doc);
        Assert.Equal("""{"n": 2}""", doc.Body);
        Assert.Equal(replaced.Version, doc.Version);
        Assert.Equal("us-east", doc.Version.Origin);
    }

    [Fact]
    public async Task If_match_mismatch_fails_the_precondition_and_changes_nothing()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var first = await store.PutDocumentAsync(user, "notes", "a", """{"n":1}""", ct: Ct);
        var second = await store.PutDocumentAsync(user, "notes", "a", """{"n":2}""", ct: Ct);
        var logBefore = await LogCountAsync(user);

        var stalePut = await store.PutDocumentAsync(user, "notes", "a", """{"n":3}""", ifMatch: first.Version, ct: Ct);
        var staleDelete = await store.DeleteDocumentAsync(user, "notes", "a", ifMatch: first.Version, ct: Ct);
        var onMissing = await store.PutDocumentAsync(user, "notes", "missing", "{}", ifMatch: second.Version, ct: Ct);

        Assert.Equal(new DocumentWriteResult(DocumentWriteOutcome.PreconditionFailed, second.Version), stalePut);
        Assert.Equal(new DocumentWriteResult(DocumentWriteOutcome.PreconditionFailed, second.Version), staleDelete);
        Assert.Equal(new DocumentWriteResult(DocumentWriteOutcome.PreconditionFailed, null), onMissing);
        Assert.Equal(logBefore, await LogCountAsync(user));
        var doc = await store.GetDocumentAsync(user, "notes", "a", Ct);
        Assert.Equal(second.Version, doc!.Version);
        Assert.Null(await store.GetDocumentAsync(user, "notes", "missing", Ct));

        var matching = await store.PutDocumentAsync(user, "notes", "a", """{"n":4}""", ifMatch: second.Version, ct: Ct);
        Assert.Equal(DocumentWriteOutcome.Replaced, matching.Outcome);
    }

    [Fact]
    public async Task Delete_writes_a_versioned_tombstone_that_reads_as_absent()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var put = await store.PutDocumentAsync(user, "notes", "a", """{"n":1}""", ct: Ct);

        var deleted = await store.DeleteDocumentAsync(user, "notes", "a", ifMatch: put.Version, ct: Ct);
        var again = await store.DeleteDocumentAsync(user, "notes", "a", ct: Ct);

        Assert.Equal(DocumentWriteOutcome.Deleted, deleted.Outcome);
        Assert.Equal(DocumentWriteOutcome.NotFound, again.Outcome);
        Assert.True(again.Version > deleted.Version);
        Assert.Null(await store.GetDocumentAsync(user, "notes", "a", Ct));
        Assert.Equal(
            (true, again.Version!.Value.Hlc.Value),
            (await db.QueryAsync<(bool, long)>("SELECT deleted, version_hlc FROM documents WHERE user_id = @user", new { user }))[0]);

        var recreated = await store.PutDocumentAsync(user, "notes", "a", """{"n":2}""", ct: Ct);
        Assert.Equal(DocumentWriteOutcome.Created, recreated.Outcome);
    }

    [Fact]
    public async Task List_pages_in_key_order_and_skips_tombstones()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        string[] keys = ["a", "B", "b", "c", "d", "e", "f/g", "é"];
        foreach (var key in keys)
        {
            await store.PutDocumentAsync(user, "items", key, $$"""{"k":"{{key}}"}""", ct: Ct);
        }

        await store.PutDocumentAsync(user, "other", "zzz", "1", ct: Ct);
        await store.DeleteDocumentAsync(user, "items", "c", ct: Ct);

        var seen = new List<string>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await store.ListDocumentsAsync(user, "items", 3, after, Ct);
            Assert.InRange(page.Items.Count, 1, 3);
            seen.AddRange(page.Items.Select(d => d.Key));
            after = page.Next;
            pages++;
        }
        while (after is not null);

        var expected = keys.Where(k => k != "c").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected, seen);
        Assert.Equal(3, pages);
        var exact = await store.ListDocumentsAsync(user, "items", expected.Count, ct: Ct);
        Assert.Null(exact.Next);
        Assert.Empty((await store.ListDocumentsAsync(ShardDatabase.NewUserId(), "items", 10, ct: Ct)).Items);
    }

    [Fact]
    public async Task Every_write_appends_one_change_with_its_version_and_the_version_it_replaced()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var v1 = (await store.PutDocumentAsync(user, "notes", "a", """{"n":1}""", ct: Ct)).Version;
        var v2 = (await store.DeleteDocumentAsync(user, "notes", "a", ct: Ct)).Version;

        var changes = (await store.ReadChangesAsync(0, 10_000, ct: Ct)).Where(c => c.UserId == user).ToList();

        Assert.Equal(2, changes.Count);
        Assert.True(changes[0].Seq < changes[1].Seq);
        Assert.Equal((ChangeKind.Document, v1, (DataVersion?)null, false, """{"n": 1}"""), (changes[0].Kind, (DataVersion?)changes[0].Version, changes[0].PreviousVersion, changes[0].Deleted, changes[0].Body));
        Assert.Equal((v2, v1, true, (string?)null), ((DataVersion?)changes[1].Version, changes[1].PreviousVersion, changes[1].Deleted, changes[1].Body));
        Assert.All(changes, c => Assert.Equal(("us-east", Core.Placement.Buckets.Of(user)), (c.Origin, c.Bucket)));
    }

    private Task<long> LogCountAsync(string user) => db.ScalarAsync<long>("SELECT count(*) FROM change_log WHERE user_id = @user", new { user });
}
