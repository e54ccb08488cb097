using Geo.Contracts.Directory;
using Geo.Core.Tls;
using Geo.Testing.Security;

namespace Geo.Security.Tests.Internal;

/// <summary>
/// The ShardDirectory answers only callers whose certificate (of the deployment's CA) names the role a call needs:
/// creates and erases the region's API, entries the region's replicator, moves and listings the admin. Every refusal
/// leaves every store as it was.
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class DirectoryAccessTests(MeshCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewId() => Guid.CreateVersion7().ToString();

    private static long Hlc(int aheadMs = 0) => (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + aheadMs) << 16;

    [Theory]
    [InlineData("none")]
    [InlineData("us-east/edge")]
    [InlineData("us-east/replicator")]
    [InlineData("eu-west/api")]
    [InlineData("global/admin")]
    [InlineData("foreign:us-east/api")]
    public async Task CreateUser_needs_the_api_certificate_of_the_directory_s_region(string caller)
    {
        var client = cluster.DirectoryClient("us-east", Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () =>
                await client.CreateUserAsync(new CreateUserRequest { UserId = NewId(), Residency = "us", HomeRegion = "us-east" }, cancellationToken: Ct));
        }
    }

    [Fact]
    public async Task CreateUser_with_the_region_s_api_certificate_creates_the_user()
    {
        var client = cluster.DirectoryClient("us-east", TestPki.For("us-east", PeerRoles.Api), out var channel);
        using (channel)
        {
            var id = NewId();
            var entry = await client.CreateUserAsync(new CreateUserRequest { UserId = id, Residency = "us", HomeRegion = "us-east" }, cancellationToken: Ct);
            Assert.Equal("us", entry.Residency);
            Assert.Equal("us", await cluster.StoredResidencyAsync("us-east", id));
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("eu-west/edge")]
    [InlineData("eu-west/replicator")]
    [InlineData("us-east/api")]
    public async Task EraseUser_needs_the_api_certificate_of_the_directory_s_region(string caller)
    {
        var userId = await cluster.CreateEuUserAsync();
        var client = cluster.DirectoryClient("eu-west", Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.EraseUserAsync(new EraseUserRequest { UserId = userId }, cancellationToken: Ct));
        }

        Assert.Equal("eu", await cluster.StoredResidencyAsync("eu-west", userId));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("us-east/api")]
    [InlineData("us-east/edge")]
    [InlineData("eu-west/replicator")]
    [InlineData("global/admin")]
    public async Task ApplyUserEntries_needs_the_replicator_certificate_of_the_directory_s_region(string caller)
    {
        var entry = new UserEntry { UserId = NewId(), Residency = "us", HomeRegion = "us-east", Version = new EntryVersion { Hlc = Hlc(), Origin = "eu-west" } };
        var client = cluster.DirectoryClient("us-east", Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.ApplyUserEntriesAsync(new ApplyUserEntriesRequest { Entries = { entry } }, cancellationToken: Ct));
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("us-east/api")]
    [InlineData("us-east/edge")]
    [InlineData("eu-west/replicator")]
    [InlineData("global/admin")]
    public async Task WatchUserChanges_needs_the_replicator_certificate_of_the_directory_s_region(string caller)
    {
        var client = cluster.DirectoryClient("us-east", Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () =>
            {
                using var watch = client.WatchUserChanges(new WatchUserChangesRequest(), cancellationToken: Ct);
                await watch.ResponseStream.MoveNext(Ct);
            });
        }

        // The region's own replicator is let in, and hears at once that entries may have changed.
        var replicator = cluster.DirectoryClient("us-east", TestPki.For("us-east", PeerRoles.Replicator), out var replicatorChannel);
        using (replicatorChannel)
        {
            using var watch = replicator.WatchUserChanges(new WatchUserChangesRequest(), cancellationToken: Ct);
            Assert.True(await watch.ResponseStream.MoveNext(Ct));
            Assert.Equal(UserChangesEvent.KindOneofCase.Changed, watch.ResponseStream.Current.KindCase);
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("eu-west/api")]
    [InlineData("eu-west/replicator")]
    [InlineData("us-east/edge")]
    [InlineData("foreign:global/admin")]
    public async Task BeginMove_needs_the_admin_certificate(string caller)
    {
        var map = await AdminMapAsync();
        var client = cluster.DirectoryClient("eu-west", Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.BeginMoveAsync(MoveOfOneBucket(map), cancellationToken: Ct));
        }
    }

    [Fact]
    public async Task Fence_flip_and_cancel_of_a_begun_move_need_the_admin_certificate_and_the_admin_can_run_them()
    {
        using var adminChannel = TestPki.Channel(cluster.Directory("eu-west").BaseAddress, TestPki.For(PeerIdentity.Admin));
        var admin = new Contracts.Directory.Directory.DirectoryClient(adminChannel);
        var map = await AdminMapAsync();
        var begun = await admin.BeginMoveAsync(MoveOfOneBucket(map), cancellationToken: Ct);
        try
        {
            var step = new MoveStepRequest { MoveId = begun.Move.MoveId, ExpectedEpoch = begun.Epoch };
            foreach (var caller in new[] { "none", "eu-west/api", "eu-west/replicator", "eu-west/edge" })
            {
                var client = cluster.DirectoryClient("eu-west", Refusals.Caller(caller), out var channel);
                using (channel)
                {
                    await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.FenceMoveAsync(step, cancellationToken: Ct));
                    await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.FlipMoveAsync(step, cancellationToken: Ct));
                    await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.CancelMoveAsync(step, cancellationToken: Ct));
                }
            }

            var fenced = await admin.FenceMoveAsync(step, cancellationToken: Ct);
            Assert.Equal(MovePhase.Fenced, fenced.Move.Phase);
            Assert.True(fenced.Changed);
        }
        finally
        {
            var current = await admin.GetMoveAsync(new GetMoveRequest { MoveId = begun.Move.MoveId }, cancellationToken: Ct);
            await admin.CancelMoveAsync(new MoveStepRequest { MoveId = begun.Move.MoveId, ExpectedEpoch = (await AdminMapAsync()).Epoch }, cancellationToken: Ct);
            Assert.NotEqual(MovePhase.Flipped, current.Move.Phase);
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("us-east/edge")]
    [InlineData("us-east/api")]
    [InlineData("us-east/replicator")]
    public async Task ListUsers_needs_the_admin_certificate(string caller)
    {
        var client = cluster.DirectoryClient("us-east", Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.ListUsersAsync(new ListUsersRequest(), cancellationToken: Ct));
        }

        var admin = cluster.DirectoryClient("us-east", TestPki.For(PeerIdentity.Admin), out var adminChannel);
        using (adminChannel)
        {
            Assert.NotNull(await admin.ListUsersAsync(new ListUsersRequest(), cancellationToken: Ct));
        }
    }

    [Theory]
    [InlineData("none")]
    [InlineData("foreign:eu-west/edge")]
    public async Task GetUser_needs_a_certificate_of_the_deployment(string caller)
    {
        var userId = await cluster.CreateEuUserAsync();
        var client = cluster.DirectoryClient("eu-west", Refusals.Caller(caller), out var channel);
        using (channel)
        {
            await Refusals.AssertRefusedAsync(cluster, caller, async () => await client.GetUserAsync(new GetUserRequest { UserId = userId }, cancellationToken: Ct));
        }

        // Any role of the deployment may look a user up: the us-east edge asks eu-west's directory.
        var edge = cluster.DirectoryClient("eu-west", TestPki.For("us-east", PeerRoles.Edge), out var edgeChannel);
        using (edgeChannel)
        {
            Assert.Equal("eu", (await edge.GetUserAsync(new GetUserRequest { UserId = userId }, cancellationToken: Ct)).Residency);
        }
    }

    [Fact]
    public async Task An_entry_that_changes_a_residency_is_refused_whatever_its_version_and_counted()
    {
        var userId = await cluster.CreateEuUserAsync();
        var before = await cluster.SnapshotAsync();
        var refusedBefore = await MeshCluster.CounterAsync(cluster.Directory("eu-west"), "geo_directory_entries_refused", "residency-change");
        var client = cluster.DirectoryClient("eu-west", TestPki.For("eu-west", PeerRoles.Replicator), out var channel);
        using (channel)
        {
            var entry = new UserEntry { UserId = userId, Residency = "global", HomeRegion = "us-east", Version = new EntryVersion { Hlc = Hlc(1000), Origin = "eu-central" } };
            var response = await client.ApplyUserEntriesAsync(new ApplyUserEntriesRequest { Entries = { entry } }, cancellationToken: Ct);
            Assert.False(response.Applied.Single());
            Assert.Equal([0], response.Refused);
        }

        Assert.Equal("eu", await cluster.StoredResidencyAsync("eu-west", userId));
        Assert.Equal(before, await cluster.SnapshotAsync());
        Assert.Equal(refusedBefore + 1, await MeshCluster.CounterAsync(cluster.Directory("eu-west"), "geo_directory_entries_refused", "residency-change"));
    }

    private async Task<ShardMap> AdminMapAsync()
    {
        var client = cluster.DirectoryClient("eu-west", TestPki.For(PeerIdentity.Admin), out var channel);
        using (channel)
        {
            return await client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct);
        }
    }

    private static BeginMoveRequest MoveOfOneBucket(ShardMap map)
    {
        // The last bucket, from its owner to the region's other shard.
        var bucket = map.OwnerIndex.Count - 1;
        var source = map.Shards[map.OwnerIndex[bucket]];
        var target = source.EndsWith("-0", StringComparison.Ordinal) ? source[..^2] + "-1" : source[..^2] + "-0";
        return new BeginMoveRequest { MoveId = "security-" + Guid.NewGuid().ToString("N")[..8], ExpectedEpoch = map.Epoch, Buckets = { bucket }, TargetShard = target };
    }
}
