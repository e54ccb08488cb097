using Geo.Contracts.Directory;
using Geo.ShardDirectory.Tests.Users;
using Geo.Testing;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;

namespace Geo.ShardDirectory.Tests.Client;

public sealed class DirectoryClientTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetUser_serves_found_users_from_cache_until_the_ttl_and_forgets_misses_quickly()
    {
        var database = await postgres.CreateDatabaseAsync("dir_client", Ct);
        await using var host = await DirectoryHost.StartAsync(database);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var client = new DirectoryClient(host.Client, new DirectoryClientOptions { UserCacheTtl = TimeSpan.FromMinutes(1), NegativeCacheTtl = TimeSpan.FromSeconds(1) }, clock);
        var other = new DirectoryClient(host.Client);

        var id = UserTests.NewId();
        Assert.Null(await client.GetUserAsync(id, Ct));
        await other.CreateUserAsync(id, "eu", "eu-west", Ct);
        Assert.Null(await client.GetUserAsync(id, Ct));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal("eu-west", (await client.GetUserAsync(id, Ct))?.HomeRegion);

        // Erased elsewhere: this client keeps its cached entry until the TTL passes.
        await other.EraseUserAsync(id, Ct);
        Assert.NotNull(await client.GetUserAsync(id, Ct));
        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Null(await client.GetUserAsync(id, Ct));

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.CreateUserAsync(UserTests.NewId(), "eu", "us-east", Ct));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        host.AssertNoErrors();
    }

    [Fact]
    public async Task Calls_to_a_directory_that_is_down_fail_within_the_deadline()
    {
        using var channel = DirectoryClient.CreateChannel(new Uri($"https://127.0.0.1:{FreePort.Next()}"), Geo.Testing.Security.TestPki.Harness.ClientOptions());
        var client = new DirectoryClient(new Geo.Contracts.Directory.Directory.DirectoryClient(channel), new DirectoryClientOptions { CallTimeout = TimeSpan.FromMilliseconds(500) });
        var started = DateTime.UtcNow;
        var error = await Assert.ThrowsAsync<RpcException>(() => client.GetUserAsync(UserTests.NewId(), Ct));
        Assert.Contains(error.StatusCode, new[] { StatusCode.Unavailable, StatusCode.DeadlineExceeded });
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task The_follower_keeps_the_last_map_while_the_directory_is_down_and_catches_up_when_it_returns()
    {
        var database = await postgres.CreateDatabaseAsync("dir_follow", Ct);
        var port = FreePort.Next();
        var host = await DirectoryHost.StartAsync(database, port: port);
        await using var admin = await DirectoryHost.StartAsync(database);
        var changes = new List<long>();
        using var channel = DirectoryClient.CreateChannel(host.Address, Geo.Testing.Security.TestPki.Harness.ClientOptions());
        await using var follower = new DirectoryClient(new Geo.Contracts.Directory.Directory.DirectoryClient(channel)).FollowShardMap(
            "eu-west", new ShardMapFollowerOptions { InitialBackoff = TimeSpan.FromMilliseconds(50), MaxBackoff = TimeSpan.FromMilliseconds(500) });
        follower.Changed += (_, map) =>
        {
            lock (changes)
            {
                changes.Add(map.Epoch);
            }
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));

        var first = await follower.WaitForEpochAsync(1, timeout.Token);
        Assert.Equal("eu-west-0", first.ShardOfUser(UserIdInBucket(0)));
        host.AssertNoErrors();
        await host.DisposeAsync();

        // Directory down: moves happen through another directory process; the follower serves the map it had,
        // and on reconnect the stream replays every epoch it missed.
        await admin.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "while-down", ExpectedEpoch = 1, Buckets = { 0 }, TargetShard = "eu-west-1" }, cancellationToken: Ct);
        await admin.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "while-down", ExpectedEpoch = 1 }, cancellationToken: Ct);
        await admin.Client.FlipMoveAsync(new MoveStepRequest { MoveId = "while-down", ExpectedEpoch = 2 }, cancellationToken: Ct);
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        Assert.False(follower.IsConnected);
        Assert.Equal(1, follower.Current?.Epoch);
        Assert.Equal("eu-west-0", follower.Current!.ShardOfUser(UserIdInBucket(0)));

        await using var restarted = await DirectoryHost.StartAsync(database, port: port);
        var latest = await follower.WaitForEpochAsync(3, timeout.Token);
        Assert.Equal(3, latest.Epoch);
        Assert.Equal("eu-west-1", latest.ShardOfUser(UserIdInBucket(0)));
        Assert.Empty(latest.FencedBuckets);
        Assert.True(follower.IsConnected);
        lock (changes)
        {
            Assert.Equal([1L, 2L, 3L], changes);
        }

        // And it keeps following live changes on the new connection.
        await admin.Client.CompleteMoveAsync(new MoveStepRequest { MoveId = "while-down", ExpectedEpoch = 3 }, cancellationToken: Ct);
        await admin.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "after", ExpectedEpoch = 3, Buckets = { 2 }, TargetShard = "eu-west-1" }, cancellationToken: Ct);
        await admin.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "after", ExpectedEpoch = 3 }, cancellationToken: Ct);
        Assert.True((await follower.WaitForEpochAsync(4, timeout.Token)).IsFenced(2));
        restarted.AssertNoErrors();
        admin.AssertNoErrors();
    }

    private static string UserIdInBucket(int bucket)
    {
        while (true)
        {
            var id = UserTests.NewId();
            if (Core.Placement.Buckets.Of(id) == bucket)
            {
                return id;
            }
        }
    }
}
