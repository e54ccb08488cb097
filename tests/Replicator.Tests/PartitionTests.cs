using System.Collections.Concurrent;
using System.Diagnostics;
using Geo.Contracts.Replication;
using Geo.Core.Placement;
using Geo.Core.Versioning;

namespace Geo.Replicator.Tests;

[Collection(ClusterCollection.Name)]
public sealed class PartitionTests(ReplicationCluster cluster)
{
    // Scaled down from the issue's 10,000 writes over 1,000 users to keep the test near a minute on a 2-core machine.
    private const int Users = 150;
    private const int WritesPerRegion = 500;
    private const int Cuts = 5;
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Writes_in_three_regions_while_a_link_is_cut_and_healed_five_times_converge_with_nothing_missing()
    {
        var users = new List<string>();
        for (var i = 0; i < Users; i++)
        {
            users.Add(await cluster.CreateUserAsync(Us[i % 3], "us"));
        }

        await cluster.WaitForUsersAsync(Us, users, TimeSpan.FromSeconds(60));
        var docs = new ConcurrentBag<(string User, string Key, DataVersion Version, string Body)>();
        var increments = new ConcurrentDictionary<(string User, string Name), long>();
        var clock = Stopwatch.StartNew();

        var writers = Us.Select((region, r) => Task.Run(async () =>
        {
            var random = new Random(17 + r);
            for (var i = 0; i < WritesPerRegion && clock.Elapsed < TimeSpan.FromSeconds(60); i++)
            {
                var user = users[random.Next(users.Count)];
                var store = cluster[region].StoreOfUser(user);
                if (random.Next(10) < 7)
                {
                    var key = $"k{random.Next(3)}";
                    var body = $$"""{"r":"{{region}}","i":{{i}}}""";
                    var result = await store.PutDocumentAsync(user, "docs", key, body, ct: Ct);
                    docs.Add((user, key, result.Version!.Value, body));
                }
                else
                {
                    var delta = random.Next(1, 10);
                    await store.IncrementCounterAsync(user, "c", delta, ct: Ct);
                    increments.AddOrUpdate((user, "c"), delta, (_, v) => v + delta);
                }

                await Task.Delay(4, Ct);
            }
        }, Ct)).ToList();

        var cutter = Task.Run(async () =>
        {
            for (var i = 0; i < Cuts; i++)
            {
                await Task.Delay(300, Ct);
                cluster.EastToWest.Cut();
                cluster.WestToEast.Cut();
                await Task.Delay(700, Ct);
                cluster.EastToWest.Heal();
                cluster.WestToEast.Heal();
            }
        }, Ct);

        try
        {
            await Task.WhenAll(writers.Append(cutter));
        }
        finally
        {
            cluster.EastToWest.Heal();
            cluster.WestToEast.Heal();
        }

        var buckets = users.Select(Buckets.Of).Distinct().ToList();
        var converged = await cluster.WaitConvergedAsync(Us, buckets, TimeSpan.FromSeconds(90));
        var divergent = await cluster.DivergentBucketsAsync(Us, buckets);
        Assert.True(converged, $"{divergent} of {buckets.Count} buckets differ after the heal");

        // 0 acknowledged writes missing: every key holds its greatest acknowledged version, every counter the sum.
        var missing = 0;
        foreach (var key in docs.GroupBy(d => (d.User, d.Key)))
        {
            var newest = key.MaxBy(d => d.Version);
            foreach (var region in Us)
            {
                var stored = await cluster[region].StoreOfUser(key.Key.User).GetDocumentAsync(key.Key.User, "docs", key.Key.Key, Ct);
                missing += stored?.Version == newest.Version ? 0 : 1;
            }
        }

        foreach (var ((user, name), sum) in increments)
        {
            foreach (var region in Us)
            {
                missing += await cluster[region].StoreOfUser(user).GetCounterAsync(user, name, Ct) == sum ? 0 : 1;
            }
        }

        // Overwritten concurrent writes are in the conflict log, and every entry there is a real pair of acknowledged writes.
        var acknowledged = docs.Select(d => d.Version).ToHashSet();
        var conflicts = 0;
        foreach (var region in Us)
        {
            foreach (var store in cluster[region].Stores.Values)
            {
                var log = await store.ReadConflictsAsync(0, 100_000, Ct);
                var ours = log.Where(c => users.Contains(c.UserId)).ToList();
                conflicts += ours.Count;
                Assert.All(ours, c => Assert.True(c.Winner > c.Loser && acknowledged.Contains(c.Winner) && acknowledged.Contains(c.Loser)));
            }
        }

        // The other jurisdiction's databases hold nothing of these users.
        var leaked = 0L;
        foreach (var table in new[] { "documents", "counters", "change_log" })
        {
            leaked += await cluster["eu-west"].CountAsync($"SELECT count(*) FROM {table} WHERE user_id = ANY(ARRAY['{string.Join("','", users)}'])");
        }

        var figures = $"partition test: {docs.Count + (WritesPerRegion * 3 - docs.Count)} writes ({docs.Count} document writes and {WritesPerRegion * 3 - docs.Count} increments) over {Users} users, {Cuts} cuts, {conflicts} conflict-log entries, {missing} missing, {leaked} rows in eu-west, {clock.Elapsed.TotalSeconds:0.0} s";
        TestContext.Current.SendDiagnosticMessage(figures);
        await File.WriteAllTextAsync(Path.Combine(AppContext.BaseDirectory, "partition-figures.txt"), figures, Ct);
        Assert.Equal(0, missing);
        Assert.True(conflicts > 0, "writes to the same keys across a cut link produced no conflict-log entries");
        Assert.Equal(0, leaked);
    }

    [Fact]
    public async Task A_partition_shows_growing_lag_and_it_recovers_after_the_heal()
    {
        var (client, headers, channel) = cluster.PeerClient("us-east", "us-south");
        using (channel)
        {
            async Task<double> LagAsync(string peer) => (await client.GetStatusAsync(new StatusRequest(), headers, cancellationToken: Ct)).Peers.Single(p => p.Peer == peer).LagSeconds;
            cluster.EastToWest.Mode = Testing.Faults.FaultMode.Blackhole;
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(4), Ct);
                Assert.True(await LagAsync("us-west") >= 3, "lag to a blackholed peer did not grow");
                Assert.True(await LagAsync("us-south") < 2, "lag to a healthy peer grew");
            }
            finally
            {
                cluster.EastToWest.Heal();
            }

            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (await LagAsync("us-west") >= 2)
            {
                Assert.True(DateTime.UtcNow < deadline, "lag did not recover after the heal");
                await Task.Delay(200, Ct);
            }
        }
    }

    [Fact]
    public async Task A_peer_down_for_a_while_and_a_replicator_killed_mid_batch_catch_up_without_loss_or_double_effect()
    {
        var user = await cluster.CreateUserAsync("us-east", "us");
        await cluster.WaitForUsersAsync(Us, [user], TimeSpan.FromSeconds(30));
        var south = cluster["us-south"].Replicator;
        var east = cluster["us-east"].Replicator;
        await south.StopAsync();
        try
        {
            var store = cluster["us-east"].StoreOfUser(user);
            for (var i = 0; i < 600; i++)
            {
                await store.PutDocumentAsync(user, "many", $"d{i}", $$"""{"i":{{i}}}""", ct: Ct);
                await store.IncrementCounterAsync(user, "n", 1, ct: Ct);
            }

            await east.StopAsync(); // Kill the sender too, then restart it and kill it again while it ships the backlog.
            await east.StartAsync(TimeSpan.FromSeconds(60), Ct);
            await south.StartAsync(TimeSpan.FromSeconds(60), Ct);
            await Task.Delay(150, Ct);
            await east.StopAsync();
            await east.StartAsync(TimeSpan.FromSeconds(60), Ct);
        }
        finally
        {
            if (!south.IsRunning)
            {
                await south.StartAsync(TimeSpan.FromSeconds(60), Ct);
            }

            if (!east.IsRunning)
            {
                await east.StartAsync(TimeSpan.FromSeconds(60), Ct);
            }
        }

        Assert.True(await cluster.WaitConvergedAsync(Us, [Buckets.Of(user)], TimeSpan.FromSeconds(60)), "us-south did not catch up");
        var southStore = cluster["us-south"].StoreOfUser(user);
        Assert.Equal(600, await southStore.GetCounterAsync(user, "n", Ct));
        Assert.Equal(600, (await southStore.ListDocumentsAsync(user, "many", 1000, ct: Ct)).Items.Count);
        var checkpoint = await cluster["us-east"].StoreOfUser(user).GetCheckpointAsync("us-south", cluster["us-east"].StoreOfUser(user).ShardId, Ct);
        Assert.True(checkpoint > 0, "no durable checkpoint for us-south");
    }

    [Fact]
    public async Task Anti_entropy_repairs_a_bucket_that_diverged_outside_replication()
    {
        var user = await cluster.CreateUserAsync("us-west", "us");
        await cluster.WaitForUsersAsync(Us, [user], TimeSpan.FromSeconds(30));
        await cluster["us-west"].StoreOfUser(user).PutDocumentAsync(user, "ae", "x", """{"v":1}""", ct: Ct);
        var bucket = Buckets.Of(user);
        Assert.True(await cluster.WaitConvergedAsync(Us, [bucket], TimeSpan.FromSeconds(30)));

        // Lose the row in us-south behind replication's back (a restore from an old backup, say).
        var southShard = cluster["us-south"].StoreOfUser(user).ShardId;
        await using (var source = Npgsql.NpgsqlDataSource.Create(cluster["us-south"].ConnectionStrings[southShard]))
        {
            await using var command = source.CreateCommand($"DELETE FROM documents WHERE user_id = '{user}'");
            Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
        }

        Assert.Equal(1, await cluster.DivergentBucketsAsync(Us, [bucket]));
        var (client, headers, channel) = cluster.PeerClient("us-south", "us-east");
        using (channel)
        {
            var request = new VerifyRequest { Repair = true };
            request.Buckets.Add(bucket);
            var result = await client.VerifyAsync(request, headers, cancellationToken: Ct);
            Assert.Contains(result.Peers, p => p.DivergentBuckets.Contains(bucket) && p.RowsApplied >= 1);
        }

        Assert.Equal(0, await cluster.DivergentBucketsAsync(Us, [bucket]));
    }
}
