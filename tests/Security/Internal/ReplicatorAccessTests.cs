using Geo.Contracts.Replication;
using Geo.Core.Placement;
using Geo.Core.Tls;
using Geo.Testing.Security;
using Geo.Testing.Services;
using ReplicationClient = Geo.Contracts.Replication.Replication.ReplicationClient;

namespace Geo.Security.Tests.Internal;

/// <summary>
/// A replicator knows its peer by its certificate alone: only another region's replicator may stream, and it speaks
/// only for what originated in its own region, for users whose residency allows the receiver; bucket rows leave only
/// for a region the users' residency allows; anti-entropy rows pass the same checks as streamed ones.
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class ReplicatorAccessTests(MeshCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static long Hlc(int aheadMs = 0) => (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + aheadMs) << 16;

    private ReplicationClient Client(TlsCredentials? credentials, out Grpc.Net.Client.GrpcChannel channel)
    {
        channel = MeshCluster.Channel(cluster.EuReplicator, credentials);
        return new ReplicationClient(channel);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("eu-west/replicator")]
    [InlineData("us-east/api")]
    [InlineData("us-east/edge")]
    [InlineData("global/admin")]
    [InlineData("foreign:us-east/replicator")]
    public async Task Only_another_region_s_replicator_may_open_a_replication_stream(string caller)
    {
        var client = Client(Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () =>
            {
                // Refused when the stream opens, before any message is read.
                using var call = client.Replicate(cancellationToken: Ct);
                await call.ResponseStream.MoveNext(Ct);
            });
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("us-east/replicator")]
    [InlineData("eu-west/api")]
    public async Task Status_and_verify_need_the_admin_certificate(string caller)
    {
        var client = Client(Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.GetStatusAsync(new StatusRequest(), cancellationToken: Ct));
            await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.VerifyAsync(new VerifyRequest { Repair = true, Buckets = { 1 } }, cancellationToken: Ct));
        }

        var admin = Client(TestPki.For(PeerIdentity.Admin), out var adminChannel);
        using (adminChannel)
        {
            Assert.Equal("eu-west", (await admin.GetStatusAsync(new StatusRequest(), cancellationToken: Ct)).Region);
        }
    }

    [Fact]
    public async Task A_us_east_replicator_sending_changes_with_origin_eu_central_is_refused()
    {
        var userId = await cluster.CreateEuUserAsync();
        var before = await cluster.SnapshotAsync();
        var client = Client(TestPki.For("us-east", PeerRoles.Replicator), out var channel);
        using (channel)
        {
            using var call = client.Replicate(cancellationToken: Ct);
            var batch = new ChangeBatch { Stream = "us-east-0", AfterSeq = 0, LastSeq = 2 };
            foreach (var (seq, origin) in new[] { (1L, "eu-central"), (2L, "us-east") })
            {
                // The first claims another region's origin; the second is us-east's own but for an eu user.
                batch.Changes.Add(new Change
                {
                    Seq = seq, Kind = ChangeKind.Document, UserId = userId, Collection = "forged", Key = $"k{seq}", Body = """{"x":1}""",
                    Version = new Contracts.Replication.Version { Hlc = Hlc(), Origin = origin }, Origin = origin,
                });
            }

            await call.RequestStream.WriteAsync(new ReplicationMessage { Batch = batch }, Ct);
            Assert.True(await call.ResponseStream.MoveNext(Ct));
            var ack = call.ResponseStream.Current.Ack;
            await call.RequestStream.CompleteAsync();
            Assert.Equal(2, ack.Refused);
            Assert.Equal(0, ack.Applied);
        }

        Assert.Equal(0, await cluster.EuDocumentsAsync(userId));
        Assert.Equal(before, await cluster.SnapshotAsync());
    }

    [Fact]
    public async Task Directory_entries_with_another_region_s_origin_or_a_changed_residency_are_refused()
    {
        var userId = await cluster.CreateEuUserAsync();
        var fresh = Guid.CreateVersion7().ToString();
        var before = await cluster.SnapshotAsync();
        await SendEntriesAsync(TestPki.For("us-east", PeerRoles.Replicator), 2,
            // us-east speaking for eu-central: forged.
            new DirectoryEntry { Seq = 1, UserId = fresh, Residency = "eu", HomeRegion = "eu-central", Version = new Contracts.Replication.Version { Hlc = Hlc(), Origin = "eu-central" } },
            // us-east's own origin, but it moves an eu user to global.
            new DirectoryEntry { Seq = 2, UserId = userId, Residency = "global", HomeRegion = "us-east", Version = new Contracts.Replication.Version { Hlc = Hlc(500), Origin = "us-east" } });
        // eu-central's own entry changing the eu user's residency: refused by the directory, whatever its version.
        await SendEntriesAsync(TestPki.For("eu-central", PeerRoles.Replicator), 1,
            new DirectoryEntry { Seq = 1, UserId = userId, Residency = "global", HomeRegion = "eu-central", Version = new Contracts.Replication.Version { Hlc = Hlc(800), Origin = "eu-central" } });

        Assert.Equal("eu", await cluster.StoredResidencyAsync("eu-west", userId));
        Assert.Null(await cluster.StoredResidencyAsync("eu-west", fresh));
        Assert.Equal(before, await cluster.SnapshotAsync());
    }

    [Fact]
    public async Task Bucket_rows_of_an_eu_user_go_to_an_eu_peer_and_never_to_a_us_peer()
    {
        var userId = await cluster.CreateEuUserAsync();
        using (var edge = TestCredentials.CreateClient(cluster.EuApi.BaseAddress, TimeSpan.FromSeconds(30), certificate: TestPki.For("us-east", PeerRoles.Edge)))
        {
            using var put = await edge.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/rows", UriKind.Relative), System.Net.Http.Json.JsonContent.Create(new { v = 1 }), Ct);
            Assert.True(put.IsSuccessStatusCode, $"{(int)put.StatusCode}");
        }

        var bucket = Buckets.Of(userId);
        var us = Client(TestPki.For("us-east", PeerRoles.Replicator), out var usChannel);
        using (usChannel)
        {
            var rows = await us.GetBucketRowsAsync(new BucketRowsRequest { Bucket = bucket }, cancellationToken: Ct);
            Assert.DoesNotContain(rows.Changes, c => c.UserId == userId);
        }

        var eu = Client(TestPki.For("eu-central", PeerRoles.Replicator), out var euChannel);
        using (euChannel)
        {
            var rows = await eu.GetBucketRowsAsync(new BucketRowsRequest { Bucket = bucket }, cancellationToken: Ct);
            Assert.Contains(rows.Changes, c => c.UserId == userId && c.Key == "rows");
        }
    }

    [Fact]
    public async Task Anti_entropy_applies_only_rows_of_the_peer_s_own_origin()
    {
        var userId = await cluster.CreateEuUserAsync();
        var bucket = Buckets.Of(userId);
        var admin = Client(TestPki.For(PeerIdentity.Admin), out var channel);
        using (channel)
        {
            // eu-central (the scripted peer) offers a row that it claims us-east wrote: refused, nothing stored.
            cluster.EuCentral.Scripted.SetRows(bucket, Row(userId, "foreign", "us-east"));
            var before = await cluster.SnapshotAsync();
            var refused = await admin.VerifyAsync(new VerifyRequest { Repair = true, Buckets = { bucket } }, cancellationToken: Ct);
            var peer = refused.Peers.Single(p => p.Peer == "eu-central");
            Assert.Equal("", peer.Error);
            Assert.Contains(bucket, peer.DivergentBuckets);
            Assert.Equal(0, peer.RowsApplied);
            Assert.Equal(before, await cluster.SnapshotAsync());

            // The same row with eu-central's own origin is applied: the path works, the origin was the reason.
            cluster.EuCentral.Scripted.SetRows(bucket, Row(userId, "own", "eu-central"));
            var applied = await admin.VerifyAsync(new VerifyRequest { Repair = true, Buckets = { bucket } }, cancellationToken: Ct);
            Assert.Equal(1, applied.Peers.Single(p => p.Peer == "eu-central").RowsApplied);
            Assert.Equal(1, await cluster.EuDocumentsAsync(userId));
        }
    }

    private static Change Row(string userId, string key, string origin) => new()
    {
        Kind = ChangeKind.Document, UserId = userId, Collection = "ae", Key = key, Body = """{"ae":1}""",
        Version = new Contracts.Replication.Version { Hlc = Hlc(), Origin = origin }, Origin = origin,
    };

    private async Task SendEntriesAsync(TlsCredentials credentials, long lastSeq, params DirectoryEntry[] entries)
    {
        var client = Client(credentials, out var channel);
        using (channel)
        {
            using var call = client.Replicate(cancellationToken: Ct);
            var batch = new ChangeBatch { Stream = "directory", AfterSeq = 0, LastSeq = lastSeq };
            batch.Entries.Add(entries);
            await call.RequestStream.WriteAsync(new ReplicationMessage { Batch = batch }, Ct);
            Assert.True(await call.ResponseStream.MoveNext(Ct));
            var ack = call.ResponseStream.Current.Ack;
            await call.RequestStream.CompleteAsync();
            Assert.Equal(entries.Length, ack.Refused);
            Assert.Equal(0, ack.Applied);
            Assert.Equal(lastSeq, ack.AppliedThrough); // refused for good: acknowledged past, never resent
        }
    }
}
