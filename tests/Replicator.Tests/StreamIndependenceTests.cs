using Npgsql;

namespace Geo.Replicator.Tests;

/// <summary>The receiver applies each of a peer's streams on its own: one that waits holds no other.</summary>
[Collection(ClusterCollection.Name)]
public sealed class StreamIndependenceTests(ReplicationCluster cluster)
{
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(30);

    // The class id of ShardStore's per-user advisory locks (an apply takes the user's lock exclusively).
    private const int UserLockClass = 0x6765;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_stream_whose_apply_waits_does_not_hold_the_same_peers_other_shard_stream()
    {
        // Two us-east users on different us-east shards: their changes travel in two streams of the one us-east → us-west session.
        var east = cluster["us-east"];
        var held = await cluster.CreateUserAsync("us-east", "us");
        string other;
        do
        {
            other = await cluster.CreateUserAsync("us-east", "us");
        }
        while (east.StoreOfUser(other).ShardId == east.StoreOfUser(held).ShardId);

        await cluster.WaitForUsersAsync(Us, [held, other], Converge);
        var west = cluster["us-west"];
        var silentBefore = SilentReceiverTimeouts();

        // What a long apply looks like to the receiver: us-west's shard holds the first user's lock elsewhere.
        await using var source = NpgsqlDataSource.Create(west.ConnectionStrings[west.StoreOfUser(held).ShardId]);
        await using var blocker = await source.OpenConnectionAsync(Ct);
        await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({UserLockClass}, hashtext(@u))", blocker))
        {
            take.Parameters.AddWithValue("u", held);
            await take.ExecuteNonQueryAsync(Ct);
        }

        await east.StoreOfUser(held).PutDocumentAsync(held, "streams", "k", """{"v":"held"}""", ct: Ct);
        await WaitingApplyAsync(blocker);

        await east.StoreOfUser(other).PutDocumentAsync(other, "streams", "k", """{"v":"other"}""", ct: Ct);
        var deadline = DateTime.UtcNow + Converge;
        while (await west.StoreOfUser(other).GetDocumentAsync(other, "streams", "k", Ct) is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the other stream's change did not reach us-west while the first stream's apply waited");
            await Task.Delay(50, Ct);
        }

        // Applied while the first stream's apply still waited, and not after the sender gave up on a receiver that had
        // stopped answering (its peer timeout, logged before it reconnects and sends both again). A reconnect for
        // another reason may happen; the receiver going silent may not. The pause lets a timeout's log line arrive.
        await Task.Delay(1000, Ct);
        Assert.NotEmpty(await WaitingApplyAsync(blocker));
        Assert.Null(await west.StoreOfUser(held).GetDocumentAsync(held, "streams", "k", Ct));
        Assert.Equal(silentBefore, SilentReceiverTimeouts());

        await using (var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({UserLockClass}, hashtext(@u))", blocker))
        {
            release.Parameters.AddWithValue("u", held);
            await release.ExecuteNonQueryAsync(Ct);
        }

        Assert.True(await cluster.WaitUsersConvergedAsync(Us, [held, other], Converge), "the held user's change did not arrive after the lock was released");
        Assert.Equal("""{"v": "held"}""", (await west.StoreOfUser(held).GetDocumentAsync(held, "streams", "k", Ct))?.Body);
    }

    private int SilentReceiverTimeouts() => cluster["us-east"].Replicator.Logs.Count(l => l.Contains("No reply from us-west", StringComparison.Ordinal));

    // The apply at us-west's shard that waits for the held user's lock, as "pid@statement start"; waits for it to appear.
    private static async Task<string> WaitingApplyAsync(NpgsqlConnection connection)
    {
        var deadline = DateTime.UtcNow + Converge;
        while (true)
        {
            await using var query = new NpgsqlCommand("""
                SELECT string_agg(pid || '@' || query_start, ',') FROM pg_stat_activity
                WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND pid <> pg_backend_pid()
                """, connection);
            if (await query.ExecuteScalarAsync(Ct) is string waiting)
            {
                return waiting;
            }

            Assert.True(DateTime.UtcNow < deadline, "the held user's change never reached us-west's apply");
            await Task.Delay(50, Ct);
        }
    }
}
