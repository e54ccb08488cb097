using Geo.Core.Placement;

namespace Geo.Replicator.Tests;

/// <summary>Change logs are pruned per replica set (docs/architecture.md §8, Storage/Retention/ChangeLogPruner.cs).</summary>
[Collection(ClusterCollection.Name)]
public sealed class PruningTests(ReplicationCluster cluster)
{
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// eu-west's replicator is suspended (an eu outage): its checkpoints on us-east's shards stop. A us user's changes
    /// on us-east are still pruned once us-west and us-south acknowledged them; a global user's wait for eu-west.
    /// </summary>
    [Fact]
    public async Task An_eu_outage_does_not_stop_pruning_of_us_users_changes_on_us_shards()
    {
        var usUser = await cluster.CreateUserAsync("us-east", "us");
        var globalUser = await cluster.CreateUserAsync("us-east", "global");
        await cluster.WaitForUsersAsync([.. Us, "eu-west"], [usUser, globalUser], Wait);
        var eu = cluster["eu-west"].Replicator;
        await eu.SuspendAsync();
        try
        {
            var east = cluster["us-east"];
            for (var i = 0; i < 20; i++)
            {
                await east.StoreOfUser(usUser).PutDocumentAsync(usUser, "docs", $"u{i}", "1", ct: Ct);
                await east.StoreOfUser(globalUser).PutDocumentAsync(globalUser, "docs", $"g{i}", "1", ct: Ct);
            }

            Assert.True(await cluster.WaitConvergedAsync(Us, [Buckets.Of(usUser)], Wait), "the us regions did not converge");
            var shard = east.StoreOfUser(usUser).ShardId;
            var deadline = DateTime.UtcNow + Wait;
            while (await east.ScalarAsync(shard, $"SELECT count(*) FROM change_log WHERE user_id = '{usUser}'") > 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the us user's changes were not pruned while eu-west was down");
                await Task.Delay(200, Ct);
            }

            // The global user's replica set includes eu-west: its changes wait (nothing of it was acknowledged there).
            Assert.Equal(20, await east.ScalarAsync(east.StoreOfUser(globalUser).ShardId,
                $"SELECT count(*) FROM change_log WHERE user_id = '{globalUser}' AND origin = 'us-east'"));
        }
        finally
        {
            await eu.ResumeAsync();
        }
    }
}
