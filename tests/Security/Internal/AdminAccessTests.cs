using Geo.Contracts.Directory;
using Geo.Core.Tls;
using Geo.Testing.Security;

namespace Geo.Security.Tests.Internal;

/// <summary>
/// geoctl presents the admin certificate; the services verify it. Without one geoctl refuses to start the change;
/// with the wrong one (another role of the same CA, or another CA) the services refuse it. Either way exit 4 and
/// nothing changed. With the right one the same commands work.
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class AdminAccessTests(MeshCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> WrongCredentials => new() { "none", "role:eu-west/api", "role:eu-west/replicator", "foreign" };

    private static string? Pki(string credential) => credential switch
    {
        "none" => null,
        "foreign" => MeshCluster.ForeignPki(),
        "admin" => TestPki.Directory,
        _ => MeshCluster.PkiWithAdmin(new PeerIdentity(credential["role:".Length..].Split('/')[0], credential.Split('/')[1])),
    };

    [Theory]
    [MemberData(nameof(WrongCredentials))]
    public async Task Cancelling_a_move_needs_the_admin_certificate(string credential)
    {
        var moveId = await BeginMoveAsync();
        try
        {
            var before = await cluster.SnapshotAsync();
            var run = await cluster.GeoctlAsync(Pki(credential), "shards", "cancel", "--region", "eu-west", "--move", moveId, "--yes");
            Assert.True(run.ExitCode == 4, $"exit {run.ExitCode}: {run.Stderr}");
            Assert.Equal(before, await cluster.SnapshotAsync());
            Assert.Equal(MovePhase.Begun, (await AdminDirectory().GetMoveAsync(new GetMoveRequest { MoveId = moveId }, cancellationToken: Ct)).Move.Phase);
        }
        finally
        {
            var ok = await cluster.GeoctlAsync(Pki("admin"), "shards", "cancel", "--region", "eu-west", "--move", moveId, "--yes");
            Assert.True(ok.ExitCode == 0, $"the admin's cancel: exit {ok.ExitCode}: {ok.Stderr}");
            Assert.Equal(MovePhase.Cancelled, (await AdminDirectory().GetMoveAsync(new GetMoveRequest { MoveId = moveId }, cancellationToken: Ct)).Move.Phase);
        }
    }

    [Theory]
    [MemberData(nameof(WrongCredentials))]
    public async Task Repair_needs_the_admin_certificate(string credential)
    {
        var before = await cluster.SnapshotAsync();
        var run = await cluster.GeoctlAsync(Pki(credential), "verify", "--repair", "--region", "eu-west", "--bucket", "7", "--yes");
        Assert.True(run.ExitCode == 4, $"exit {run.ExitCode}: {run.Stderr}");
        Assert.Equal(before, await cluster.SnapshotAsync());
    }

    [Theory]
    [InlineData("none")]
    [InlineData("role:eu-west/edge")]
    [InlineData("role:eu-west/replicator")]
    [InlineData("foreign")]
    public async Task Replication_status_needs_the_admin_certificate(string credential)
    {
        var status = await cluster.GeoctlAsync(Pki(credential), "replication", "status", "--region", "eu-west");
        Assert.True(status.ExitCode == 4, $"status: exit {status.ExitCode}: {status.Stderr}");
    }

    [Theory]
    [InlineData("none")]
    [InlineData("foreign")]
    public async Task User_look_ups_need_a_certificate_of_the_deployment(string credential)
    {
        var userId = await cluster.CreateEuUserAsync();
        var user = await cluster.GeoctlAsync(Pki(credential), "users", "get", userId, "--region", "eu-west");
        Assert.True(user.ExitCode == 4, $"users get: exit {user.ExitCode}: {user.Stderr}");
        Assert.DoesNotContain(userId, user.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_the_admin_certificate_geoctl_reads_status_and_users_as_the_admin_not_as_a_peer()
    {
        var userId = await cluster.CreateEuUserAsync();
        var status = await cluster.GeoctlAsync(Pki("admin"), "replication", "status", "--region", "eu-west", "-o", "json");
        Assert.True(status.ExitCode == 0, $"status: exit {status.ExitCode}: {status.Stderr}");
        Assert.Contains("eu-central", status.Stdout, StringComparison.Ordinal);
        var user = await cluster.GeoctlAsync(Pki("admin"), "users", "get", userId, "--region", "eu-west", "-o", "json");
        Assert.True(user.ExitCode is 0 or 5, $"users get: exit {user.ExitCode}: {user.Stderr}"); // 5: eu-central's directory does not run here
        Assert.Contains(userId, user.Stdout, StringComparison.Ordinal);
    }

    private Contracts.Directory.Directory.DirectoryClient AdminDirectory()
        => new(TestPki.Channel(cluster.Directory("eu-west").BaseAddress, TestPki.For(PeerIdentity.Admin)));

    private async Task<string> BeginMoveAsync()
    {
        var admin = AdminDirectory();
        var map = await admin.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct);
        var bucket = map.OwnerIndex.Count - 2;
        var source = map.Shards[map.OwnerIndex[bucket]];
        var target = source.EndsWith("-0", StringComparison.Ordinal) ? source[..^2] + "-1" : source[..^2] + "-0";
        var moveId = "security-cli-" + Guid.NewGuid().ToString("N")[..8];
        await admin.BeginMoveAsync(new BeginMoveRequest { MoveId = moveId, ExpectedEpoch = map.Epoch, Buckets = { bucket }, TargetShard = target }, cancellationToken: Ct);
        return moveId;
    }
}
