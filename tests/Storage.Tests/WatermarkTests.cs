using Npgsql;

namespace Geo.Storage.Tests;

/// <summary>
/// Whose transactions hold the change log's stable position back: every running transaction of the shard's own
/// database that holds an id (it may have appended), and none of another database on the same server (its sessions
/// cannot draw this database's sequence). On a shared server, a write transaction of another database held every
/// sender of every shard back for as long as it ran.
/// </summary>
public sealed class WatermarkTests(ShardDatabase db) : IClassFixture<ShardDatabase>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_transaction_of_another_database_does_not_hold_the_stable_position_back()
    {
        await using var other = new NpgsqlConnection(await db.Server.CreateDatabaseAsync("watermark_other", Ct));
        await other.OpenAsync(Ct);
        await using var running = await other.BeginTransactionAsync(Ct);
        await TakeIdAsync(other, running);

        var store = db.Store();
        await store.PutDocumentAsync(ShardDatabase.NewUserId(), "watermark", "k", """{"v":1}""", ct: Ct);
        var drawn = await db.ScalarAsync<long>("SELECT max(seq) FROM change_log");

        // The other database's transaction is still open.
        var stable = await store.StableChangePositionAsync(TimeSpan.FromSeconds(5), Ct);
        Assert.True(stable >= drawn, $"stable position {stable?.ToString() ?? "none"} while the log holds {drawn}: held back by another database's transaction");
        await running.RollbackAsync(Ct);
    }

    [Fact]
    public async Task A_transaction_of_the_same_database_holding_an_id_holds_it_back_until_it_ends()
    {
        await using var same = await db.DataSource.OpenConnectionAsync(Ct);
        var running = await same.BeginTransactionAsync(Ct);
        await TakeIdAsync(same, running); // as an append does first (it may draw a seq at any moment after)

        var store = db.Store();
        await store.PutDocumentAsync(ShardDatabase.NewUserId(), "watermark", "k", """{"v":2}""", ct: Ct);
        Assert.Null(await store.StableChangePositionAsync(TimeSpan.FromMilliseconds(500), Ct));

        await running.CommitAsync(Ct);
        await running.DisposeAsync();
        var drawn = await db.ScalarAsync<long>("SELECT max(seq) FROM change_log");
        Assert.True(await store.StableChangePositionAsync(TimeSpan.FromSeconds(5), Ct) >= drawn);
    }

    private static async Task TakeIdAsync(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        await using var command = new NpgsqlCommand("SELECT pg_current_xact_id()", connection, transaction);
        await command.ExecuteScalarAsync(Ct);
    }
}
