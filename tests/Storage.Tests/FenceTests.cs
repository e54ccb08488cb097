using Geo.Core.Placement;

namespace Geo.Storage.Tests;

public sealed class FenceTests(ShardDatabase db) : IClassFixture<ShardDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_fenced_bucket_refuses_every_kind_of_write_and_writes_nothing()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var bucket = Buckets.Of(user);
        await store.PutDocumentAsync(user, "notes", "a", "1", ct: Ct);
        var changes = await store.ReadChangesAsync(0, 10_000, ct: Ct);
        var logBefore = await db.ScalarAsync<long>("SELECT count(*) FROM change_log WHERE user_id = @user", new { user });

        await store.FenceBucketsAsync("m1", 7, [bucket], Ct);

        var put = await Assert.ThrowsAsync<BucketFencedException>(() => store.PutDocumentAsync(user, "notes", "a", "2", ct: Ct));
        Assert.Equal(bucket, put.Bucket);
        Assert.Equal(7, put.Epoch);
        await Assert.ThrowsAsync<BucketFencedException>(() => store.IncrementCounterAsync(user, "c", 1, ct: Ct));
        await Assert.ThrowsAsync<BucketFencedException>(() => store.EraseUserAsync(user, ct: Ct));
        await Assert.ThrowsAsync<BucketFencedException>(() => db.Store("eu-west").ApplyRemoteAsync([.. changes.Where(c => c.UserId == user)], ct: Ct));
        Assert.Equal(logBefore, await db.ScalarAsync<long>("SELECT count(*) FROM change_log WHERE user_id = @user", new { user }));
        Assert.Equal("1", (await store.GetDocumentAsync(user, "notes", "a", Ct))!.Body);

        // Another bucket is not affected; unfencing lets writes through again.
        var other = ShardDatabase.NewUserId();
        while (Buckets.Of(other) == bucket)
        {
            other = ShardDatabase.NewUserId();
        }

        await store.PutDocumentAsync(other, "notes", "a", "1", ct: Ct);
        Assert.Equal(1, await store.UnfenceBucketsAsync([bucket], Ct));
        await store.PutDocumentAsync(user, "notes", "a", "3", ct: Ct);
    }

    [Fact]
    public async Task The_fence_waits_for_an_in_flight_write_so_none_commits_after_it()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var bucket = Buckets.Of(user);

        // Hold the bucket's fence lock shared in an open transaction, as a write in flight does.
        await using var connection = await db.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await connection.BeginTransactionAsync(Ct);
        await using (var hold = new Npgsql.NpgsqlCommand("SELECT pg_advisory_xact_lock_shared(26470, @b)", connection, tx))
        {
            hold.Parameters.AddWithValue("b", bucket);
            await hold.ExecuteNonQueryAsync(Ct);
        }

        var fence = store.FenceBucketsAsync("m2", 3, [bucket], Ct);
        await Task.Delay(300, Ct);
        Assert.False(fence.IsCompleted, "the fence must wait for the in-flight write");
        await tx.CommitAsync(Ct);
        await fence.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        await Assert.ThrowsAsync<BucketFencedException>(() => store.PutDocumentAsync(user, "notes", "a", "1", ct: Ct));
        Assert.Equal(1, await store.UnfenceBucketsAsync([bucket], Ct));
    }
}
