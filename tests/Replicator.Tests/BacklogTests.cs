using System.Globalization;
using Geo.Contracts.Replication;
using Geo.Core.Placement;

namespace Geo.Replicator.Tests;

/// <summary>
/// No stuck streams: a backlog of large changes, far more bytes than one gRPC message may hold, drains after an outage,
/// both on the replication stream and through anti-entropy's row transfers.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class BacklogTests(ReplicationCluster cluster)
{
    private const int Writes = 150;
    private const int BodyChars = 60 * 1024;
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Body(int i) => $$"""{"i":{{i}},"pad":"{{new string((char)('a' + (i % 26)), BodyChars)}}"}""";

    /// <summary>
    /// us-south's replicator is suspended while us-east takes 150 writes of 60 KB (about 9 MB, twice the 4 MiB message
    /// limit), long enough for us-east's session to time out; once resumed, the backlog is read from the checkpoint in one
    /// go and must still be shipped, in batches capped by bytes, and converge within 30 s.
    /// </summary>
    [Fact]
    public async Task A_backlog_of_large_writes_after_a_paused_peer_drains_within_30_s()
    {
        var users = new string[10];
        for (var i = 0; i < users.Length; i++)
        {
            users[i] = await cluster.CreateUserAsync("us-east", "us");
        }

        await cluster.WaitForUsersAsync(Us, users, Converge);
        var south = cluster["us-south"].Replicator;
        await south.SuspendAsync();
        try
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, Writes), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = Ct }, async (i, ct) =>
            {
                var user = users[i % users.Length];
                await cluster["us-east"].StoreOfUser(user).PutDocumentAsync(user, "big", $"k{i}", Body(i), ct: ct);
            });

            // Longer than the peer timeout (5 s): the sender's session dies and the next one starts from the checkpoint.
            await Task.Delay(TimeSpan.FromSeconds(7), Ct);
        }
        finally
        {
            await south.ResumeAsync();
        }

        var buckets = users.Select(Buckets.Of).Distinct().ToList();
        Assert.True(await cluster.WaitConvergedAsync(["us-east", "us-south"], buckets, Converge),
            $"us-south did not converge with us-east within {Converge.TotalSeconds} s; last replicator warnings:\n{string.Join('\n', cluster.WarningLogs.TakeLast(3))}");
        Assert.Equal(Writes, await cluster["us-south"].CountAsync($"SELECT count(*) FROM documents WHERE collection = 'big' AND user_id IN ({string.Join(',', users.Select(u => $"'{u}'"))})"));
        Assert.True(await cluster.WaitConvergedAsync(Us, buckets, Converge), "us-west did not converge");
    }

    /// <summary>
    /// One bucket holds 150 rows of 60 KB at us-east that no stream will ship (written there without change-log entries,
    /// like lost changes); anti-entropy at us-south, then at us-west, pulls them in pages that each fit one message.
    /// </summary>
    [Fact]
    public async Task Anti_entropy_repairs_a_bucket_larger_than_one_message()
    {
        var user = await cluster.CreateUserAsync("us-east", "us");
        await cluster.WaitForUsersAsync(Us, [user], Converge);
        var bucket = Buckets.Of(user);
        var east = cluster["us-east"];
        var hlc = east.Clock.Now().Value;
        // Rows of us-east's own origin written past the store (no change-log entry): no stream ships them, and a peer
        // accepts them from us-east because they originated there.
        var written = await east.ScalarAsync(east.StoreOfUser(user).ShardId, string.Create(CultureInfo.InvariantCulture, $"""
            WITH i AS (
                INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, updated_at)
                SELECT '{user}', 'repair', 'k' || g, {bucket}, jsonb_build_object('i', g, 'pad', repeat(chr(97 + g % 26), {BodyChars})), false, {hlc} + g, 'us-east', now()
                FROM generate_series(0, {Writes - 1}) AS g
                RETURNING 1)
            SELECT count(*) FROM i
            """));
        Assert.Equal(Writes, written);

        foreach (var region in new[] { "us-south", "us-west" })
        {
            var (client, headers, channel) = cluster.AdminClient(region);
            using (channel)
            {
                var request = new VerifyRequest { Repair = true };
                request.Buckets.Add(bucket);
                var response = await client.VerifyAsync(request, headers, deadline: DateTime.UtcNow.AddMinutes(2), cancellationToken: Ct);
                var fromEast = Assert.Single(response.Peers, p => p.Peer == "us-east");
                Assert.True(fromEast.Error.Length == 0, $"{region}: anti-entropy with us-east failed: {fromEast.Error}");
                Assert.Equal(Writes, fromEast.RowsApplied);
            }
        }

        Assert.True(await cluster.WaitConvergedAsync(Us, [bucket], Converge), "the repaired bucket's digests differ");
    }
}
