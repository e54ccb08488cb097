using Geo.Contracts.Replication;
using Geo.Core.Placement;
using Geo.Testing.Services;
using Geo.Testing.Time;

namespace Geo.Replicator.Tests;

/// <summary>
/// A rolling upgrade loses nothing (docs/operations.md "Upgrades"): a receiver that does not know a change kind a newer
/// sender ships holds the stream there, unacknowledged; the sender keeps the change, its lag grows; once the receiver
/// runs a binary that knows the kind it applies everything and converges.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class UpgradeTests(ReplicationCluster cluster)
{
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// us-south runs as the "previous" binary (counters unknown: <c>Replicator:UnsupportedKinds</c>) while us-east ships
    /// a document, a counter change and another document of one user. us-south applies the first document and stops at
    /// the counter: the later document waits behind it, us-east keeps both in its change log, reports the held stream
    /// and a growing lag. After the "upgrade" (the cluster's own binary again) us-south converges.
    /// </summary>
    [Fact]
    public async Task A_change_kind_the_receiver_does_not_know_is_held_not_lost_and_applied_after_the_upgrade()
    {
        var user = await cluster.CreateUserAsync("us-east", "us");
        await cluster.WaitForUsersAsync(Us, [user], Wait);
        var south = cluster["us-south"].Replicator;
        var oldSettings = cluster.ReplicatorSettings("us-south");
        oldSettings["Replicator:UnsupportedKinds:0"] = "Counter";
        await south.StopAsync();
        ServiceProcess? old = null;
        try
        {
            old = await ServiceProcess.StartAsync("Replicator", south.Port, oldSettings, http2Only: true, readyTimeout: TimeSpan.FromSeconds(120), ct: Ct);
            var east = cluster["us-east"].StoreOfUser(user);
            var southStore = cluster["us-south"].StoreOfUser(user);
            await east.PutDocumentAsync(user, "docs", "before", """{"v":1}""", ct: Ct);
            await east.IncrementCounterAsync(user, "n", 5, ct: Ct);
            await east.PutDocumentAsync(user, "docs", "after", """{"v":2}""", ct: Ct);

            await Eventually.UntilAsync(async () => await southStore.GetDocumentAsync(user, "docs", "before", Ct) is not null, Wait, "the document before the counter did not reach us-south", Ct, pollMilliseconds: 100);
            await Eventually.UntilAsync(() => Task.FromResult(old.Logs.Any(l => l.Contains("change kind Counter is unknown", StringComparison.Ordinal))), Wait, "us-south logged no error for the unknown kind", Ct, pollMilliseconds: 100);
            var (client, headers, channel) = cluster.AdminClient("us-east");
            using (channel)
            {
                async Task<PeerStatus> StatusAsync() => (await client.GetStatusAsync(new StatusRequest(), headers, cancellationToken: Ct)).Peers.Single(p => p.Peer == "us-south");
                await Eventually.UntilAsync(async () => (await StatusAsync()).LastError.Contains("does not know change kind Counter", StringComparison.Ordinal), Wait, "us-east's status does not say why the stream is held", Ct, pollMilliseconds: 100);
                var first = await StatusAsync();
                await Task.Delay(TimeSpan.FromSeconds(1.5), Ct);
                var second = await StatusAsync();
                Assert.True(second.LagSeconds > first.LagSeconds, $"lag did not grow: {first.LagSeconds} s then {second.LagSeconds} s");
                Assert.True(second.PendingChanges >= 2, $"pending {second.PendingChanges}: the counter and the later document are not counted as unacknowledged");
            }

            // Nothing acknowledged past the unknown change, nothing skipped: us-south has neither the counter nor the later
            // document, and us-east keeps both in its change log (the pruner waits for us-south, in the user's replica set).
            Assert.Null(await southStore.GetDocumentAsync(user, "docs", "after", Ct));
            Assert.Equal(0, await southStore.GetCounterAsync(user, "n", Ct));
            Assert.Equal(2, await cluster["us-east"].ScalarAsync(east.ShardId,
                $"SELECT count(*) FROM change_log WHERE user_id = '{user}' AND origin = 'us-east' AND (kind = 'counter' OR key = 'after')"));
        }
        finally
        {
            if (old is not null)
            {
                await old.DisposeAsync();
            }

            await south.StartAsync(TimeSpan.FromSeconds(120), Ct); // The upgrade: the binary that knows counters.
        }

        Assert.True(await cluster.WaitConvergedAsync(Us, [Buckets.Of(user)], Wait), "us-south did not converge after the upgrade");
        var upgraded = cluster["us-south"].StoreOfUser(user);
        Assert.Equal(5, await upgraded.GetCounterAsync(user, "n", Ct));
        Assert.Equal("""{"v": 2}""", (await upgraded.GetDocumentAsync(user, "docs", "after", Ct))!.Body);
    }

    /// <summary>A sender whose protocol window does not meet the receiver's (two versions ahead) is refused with a clear status.</summary>
    [Fact]
    public async Task A_sender_outside_the_protocol_window_is_refused_with_failed_precondition()
    {
        var (client, headers, channel) = cluster.PeerClient("us-south", "us-east");
        using (channel)
        {
            using var call = client.Replicate(headers, cancellationToken: Ct);
            var future = Contracts.ProtocolVersions.Replication + 2;
            await call.RequestStream.WriteAsync(new ReplicationMessage
            {
                Heartbeat = new Heartbeat { Id = 1, SentAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), ProtocolVersion = future, MinProtocolVersion = future },
            }, Ct);
            var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await call.ResponseStream.MoveNext(Ct));
            Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, error.StatusCode);
            Assert.Contains("outside this binary's window", error.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(0, 0, true)] // a binary from before versions speaks version 1
    [InlineData(2, 1, true)]
    [InlineData(3, 2, true)] // the next release, which still speaks this one
    [InlineData(4, 3, false)] // two steps ahead
    public void The_protocol_window_admits_one_step_either_way(int peerVersion, int peerMinimum, bool compatible) =>
        Assert.Equal(compatible, Contracts.ProtocolVersions.Compatible(2, 1, peerVersion, peerMinimum));
}
