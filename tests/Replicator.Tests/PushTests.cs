using Geo.Testing.Time;

namespace Geo.Replicator.Tests;

/// <summary>
/// Push, not poll: a committed change reaches the peer because the shard's NOTIFY woke the sender, not because the
/// sender looked again. us-south's replicator runs with its polls a minute apart; a write at us-south must still be
/// readable at us-east within seconds.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class PushTests(ReplicationCluster cluster)
{
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    // Far beyond how long the test waits for each write: only a push can deliver in time.
    private static readonly TimeSpan Delivered = TimeSpan.FromSeconds(15);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_write_reaches_the_peer_by_the_shards_notification_while_the_sender_polls_once_a_minute()
    {
        var user = await cluster.CreateUserAsync("us-south", "us");
        await cluster.WaitForUsersAsync(Us, [user], Wait);
        var settings = cluster.ReplicatorSettings("us-south");
        settings["Replicator:PushedPollInterval"] = "00:01:00";
        await cluster.WithReplicatorAsync("us-south", settings, async _ =>
        {
            var store = cluster["us-south"].StoreOfUser(user);
            var east = cluster["us-east"].StoreOfUser(user);
            // The first write lets the sessions settle (the senders' first reads happen when they connect); the
            // following ones arrive while every sender idles in its one-minute wait.
            await store.PutDocumentAsync(user, "push", "warm-up", """{"v":0}""", ct: Ct);
            await Eventually.UntilAsync(async () => await east.GetDocumentAsync(user, "push", "warm-up", Ct) is not null, Wait, "the first write was not readable at us-east", Ct);
            for (var i = 1; i <= 3; i++)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), Ct);
                var written = await store.PutDocumentAsync(user, "push", $"k{i}", $$"""{"v":{{i}}}""", ct: Ct);
                var elapsed = await Eventually.UntilAsync(async () => (await east.GetDocumentAsync(user, "push", $"k{i}", Ct))?.Version == written.Version, Delivered, $"write {i} was not readable at us-east", Ct);
                TestContext.Current.TestOutputHelper?.WriteLine($"write {i}: readable at us-east after {elapsed.TotalMilliseconds:F0} ms");
            }
        }, Ct);
    }
}
