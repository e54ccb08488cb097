using Geo.Contracts.Replication;
using Geo.Core.Placement;
using Grpc.Core;

namespace Geo.Replicator.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ReplicationTests(ReplicationCluster cluster)
{
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];
    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Three_regions_converge_documents_and_counters_to_the_sum_of_all_increments()
    {
        // Errors written while this test runs (the collection runs one test at a time); others in the collection provoke
        // refusals on purpose (UpgradeTests' protocol window), which must not count here.
        var before = cluster.ErrorLogs.ToHashSet(StringComparer.Ordinal);
        var user = await cluster.CreateUserAsync("us-east", "us");
        await cluster.WaitForUsersAsync(Us, [user], Converge);
        await cluster["us-east"].StoreOfUser(user).PutDocumentAsync(user, "notes", "a", """{"v":1}""", ct: Ct);
        long expected = 0;
        foreach (var (region, delta) in new[] { ("us-east", 5L), ("us-west", 7L), ("us-south", -2L), ("us-west", 1L) })
        {
            await cluster[region].StoreOfUser(user).IncrementCounterAsync(user, "clicks", delta, ct: Ct);
            expected += delta;
        }

        Assert.True(await cluster.WaitConvergedAsync(Us, [Buckets.Of(user)], Converge), "digests did not converge");
        foreach (var region in Us)
        {
            var store = cluster[region].StoreOfUser(user);
            Assert.Equal(expected, await store.GetCounterAsync(user, "clicks", Ct));
            Assert.Equal("""{"v": 1}""", (await store.GetDocumentAsync(user, "notes", "a", Ct))?.Body);
        }

        var errors = cluster.ErrorLogs.Where(l => !before.Contains(l)).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors.Take(3)));
    }

    [Fact]
    public async Task Concurrent_writes_to_one_key_pick_the_same_winner_everywhere_and_log_the_loser()
    {
        var user = await cluster.CreateUserAsync("us-east", "us");
        await cluster.WaitForUsersAsync(Us, [user], Converge);
        cluster.EastToWest.Cut();
        cluster.WestToEast.Cut();
        try
        {
            var east = await cluster["us-east"].StoreOfUser(user).PutDocumentAsync(user, "profile", "name", """{"n":"east"}""", ct: Ct);
            var west = await cluster["us-west"].StoreOfUser(user).PutDocumentAsync(user, "profile", "name", """{"n":"west"}""", ct: Ct);
            var winner = east.Version!.Value > west.Version!.Value ? east.Version.Value : west.Version.Value;
            var loser = winner == east.Version.Value ? west.Version.Value : east.Version.Value;
            await Task.Delay(500, Ct);
            Assert.Equal(west.Version, (await cluster["us-west"].StoreOfUser(user).GetDocumentAsync(user, "profile", "name", Ct))?.Version);

            cluster.EastToWest.Heal();
            cluster.WestToEast.Heal();
            Assert.True(await cluster.WaitConvergedAsync(Us, [Buckets.Of(user)], Converge), "digests did not converge after the heal");

            // Equal digests only say every region holds the winner. The loser's arrival at the winner's region changes no
            // digest but writes that region's conflict entry, so wait until every change is acknowledged everywhere.
            Assert.True(await cluster.WaitDeliveredAsync(Us, Converge), "changes were not acknowledged by every peer after the heal");
            foreach (var region in Us)
            {
                var store = cluster[region].StoreOfUser(user);
                Assert.Equal(winner, (await store.GetDocumentAsync(user, "profile", "name", Ct))?.Version);
                var conflicts = await store.ReadConflictsAsync(0, 10_000, Ct);
                Assert.True(conflicts.Any(c => c.UserId == user && c.Key == "name" && c.Winner == winner && c.Loser == loser),
                    $"{region}: no conflict {winner} over {loser}; has [{string.Join(", ", conflicts.Where(c => c.UserId == user).Select(c => $"{c.Winner} over {c.Loser}"))}]");
            }
        }
        finally
        {
            cluster.EastToWest.Heal();
            cluster.WestToEast.Heal();
        }
    }

    [Fact]
    public async Task Delete_against_a_concurrent_update_converges_to_the_later_version()
    {
        var user = await cluster.CreateUserAsync("us-west", "us");
        await cluster.WaitForUsersAsync(Us, [user], Converge);
        await cluster["us-east"].StoreOfUser(user).PutDocumentAsync(user, "notes", "k", """{"v":0}""", ct: Ct);
        Assert.True(await cluster.WaitConvergedAsync(Us, [Buckets.Of(user)], Converge));
        cluster.EastToWest.Cut();
        cluster.WestToEast.Cut();
        try
        {
            var deleted = await cluster["us-east"].StoreOfUser(user).DeleteDocumentAsync(user, "notes", "k", ct: Ct);
            var updated = await cluster["us-west"].StoreOfUser(user).PutDocumentAsync(user, "notes", "k", """{"v":2}""", ct: Ct);
            cluster.EastToWest.Heal();
            cluster.WestToEast.Heal();
            Assert.True(await cluster.WaitConvergedAsync(Us, [Buckets.Of(user)], Converge));
            var updateWins = updated.Version!.Value > deleted.Version!.Value;
            foreach (var region in Us)
            {
                var doc = await cluster[region].StoreOfUser(user).GetDocumentAsync(user, "notes", "k", Ct);
                Assert.Equal(updateWins, doc is not null);
            }
        }
        finally
        {
            cluster.EastToWest.Heal();
            cluster.WestToEast.Heal();
        }
    }

    [Fact]
    public async Task Peers_without_a_replicator_certificate_of_another_region_are_refused()
    {
        // No certificate: unauthenticated. A certificate of the run's CA that is not a peer replicator (the receiver's own
        // region, an edge, a region outside the topology): permission denied. The status call needs the admin role.
        foreach (var (credentials, expected) in new (Core.Tls.TlsCredentials?, StatusCode)[]
        {
            (null, StatusCode.Unauthenticated),
            (Testing.Security.TestPki.For("us-east", Core.Tls.PeerRoles.Replicator), StatusCode.PermissionDenied),
            (Testing.Security.TestPki.For("us-west", Core.Tls.PeerRoles.Edge), StatusCode.PermissionDenied),
            (Testing.Security.TestPki.For("mars-1", Core.Tls.PeerRoles.Replicator), StatusCode.PermissionDenied),
        })
        {
            var (client, headers, channel) = cluster.Client("us-east", credentials);
            using (channel)
            {
                var error = await Assert.ThrowsAsync<RpcException>(async () => await client.GetStatusAsync(new StatusRequest(), headers, cancellationToken: Ct));
                Assert.Equal(expected, error.StatusCode);
                // The stream is refused when it opens, before any message is read. No message is written: a write racing
                // the refusal (trailers + RST_STREAM) can fail before the client has read the status and then surfaces as
                // CANCELLED (grpc-dotnet reports the call's status from WriteAsync only when it has already arrived).
                using var call = client.Replicate(headers, cancellationToken: Ct);
                var streamError = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext(Ct));
                Assert.Equal(expected, streamError.StatusCode);
            }
        }
    }

    [Fact]
    public async Task A_forged_batch_for_a_user_outside_the_receivers_residency_is_refused()
    {
        var euUser = await cluster.CreateUserAsync("eu-west", "eu");
        await cluster.WaitForUsersAsync(["us-east"], [euUser], Converge);
        var (client, headers, channel) = cluster.PeerClient("us-east", "eu-west");
        using (channel)
        {
            using var call = client.Replicate(headers, cancellationToken: Ct);
            var hlc = cluster["eu-west"].Clock.Now().Value;
            var batch = new ChangeBatch { Stream = "eu-west-forged", AfterSeq = 0, LastSeq = 1 };
            batch.Changes.Add(new Change
            {
                Seq = 1, Kind = ChangeKind.Document, UserId = euUser, Collection = "secrets", Key = "k", Body = """{"x":1}""",
                Version = new Contracts.Replication.Version { Hlc = hlc, Origin = "eu-west" }, Origin = "eu-west",
            });
            await call.RequestStream.WriteAsync(new ReplicationMessage { Batch = batch }, Ct);
            Assert.True(await call.ResponseStream.MoveNext(Ct));
            var ack = call.ResponseStream.Current.Ack;
            Assert.Equal(1, ack.Refused);
            Assert.Equal(0, ack.Applied);
            Assert.Equal(1, ack.AppliedThrough); // Refused for good: acknowledged past, never retried.
            await call.RequestStream.CompleteAsync();
        }

        Assert.Equal(0, await cluster["us-east"].CountAsync($"SELECT count(*) FROM documents WHERE user_id = '{euUser}'"));
    }

    [Fact]
    public async Task An_eu_users_changes_never_reach_a_us_shard()
    {
        var euUser = await cluster.CreateUserAsync("eu-west", "eu");
        var store = cluster["eu-west"].StoreOfUser(euUser);
        for (var i = 0; i < 20; i++)
        {
            await store.PutDocumentAsync(euUser, "notes", $"n{i}", """{"private":true}""", ct: Ct);
        }

        await store.IncrementCounterAsync(euUser, "visits", 3, ct: Ct);
        // Everything written so far is at or below the stable position (the entries themselves may be pruned already:
        // this cluster has no other eu region, so nobody holds the user back).
        var lastSeq = await store.StableChangePositionAsync(TimeSpan.FromSeconds(10), Ct) ?? throw new InvalidOperationException("no stable change-log position");

        // Wait until every us peer acknowledged the eu-west shard past these writes: they were filtered, not delayed.
        var (client, headers, channel) = cluster.AdminClient("eu-west");
        using (channel)
        {
            var deadline = DateTime.UtcNow + Converge;
            while (true)
            {
                var status = await client.GetStatusAsync(new StatusRequest(), headers, cancellationToken: Ct);
                if (status.Peers.Where(p => p.Peer.StartsWith("us-", StringComparison.Ordinal)).All(p => p.Acknowledged.TryGetValue(store.ShardId, out var a) && a >= lastSeq))
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, "us peers did not acknowledge eu-west's log");
                await Task.Delay(200, Ct);
            }
        }

        foreach (var region in Us)
        {
            foreach (var table in new[] { "documents", "counters", "change_log", "conflicts" })
            {
                Assert.Equal(0, await cluster[region].CountAsync($"SELECT count(*) FROM {table} WHERE user_id = '{euUser}'"));
            }
        }
    }
}
