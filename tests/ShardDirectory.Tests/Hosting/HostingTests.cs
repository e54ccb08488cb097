using System.Net;
using Geo.Contracts.Directory;
using Geo.ShardDirectory.Users;
using Geo.ShardDirectory.Tests.Users;
using Geo.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Geo.ShardDirectory.Tests.Hosting;

public sealed class HostingTests(PostgresServer postgres)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_bad_configuration_fails_start_up_naming_every_key()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => DirectoryHost.StartAsync(
            "Host=127.0.0.1", region: "", settings: new Dictionary<string, string?> { ["Geo:Topology"] = "/nonexistent/topology.json", ["Directory:UserCacheCapacity"] = "0" }));
        var all = string.Join("\n", error.Failures);
        Assert.Contains("Geo:Topology", all, StringComparison.Ordinal);
        Assert.Contains("Geo:Region", all, StringComparison.Ordinal);

        var unknownRegion = await Assert.ThrowsAsync<OptionsValidationException>(() => DirectoryHost.StartAsync("Host=127.0.0.1", region: "moon"));
        Assert.Contains("'moon' is not a region", string.Join("\n", unknownRegion.Failures), StringComparison.Ordinal);
        var capacity = await Assert.ThrowsAsync<OptionsValidationException>(() => DirectoryHost.StartAsync(
            "Host=127.0.0.1", settings: new Dictionary<string, string?> { ["Directory:UserCacheCapacity"] = "0" }));
        Assert.Contains("Directory:UserCacheCapacity", string.Join("\n", capacity.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_directories_starting_together_on_a_fresh_database_migrate_once_and_share_one_map()
    {
        var database = await postgres.CreateDatabaseAsync("dir_race", Ct);
        var hosts = await Task.WhenAll(DirectoryHost.StartAsync(database), DirectoryHost.StartAsync(database));
        try
        {
            var maps = await Task.WhenAll(hosts.Select(h => h.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct).ResponseAsync));
            Assert.Equal(maps[0], maps[1]);
            Assert.Equal(1, maps[0].Epoch);
            await using var connection = new Npgsql.NpgsqlConnection(database);
            await connection.OpenAsync(Ct);
            await using var command = new Npgsql.NpgsqlCommand("SELECT (SELECT count(*) FROM geo_directory_schema_journal) * 100 + (SELECT count(*) FROM shard_map_history)", connection);
            // Every embedded migration recorded once, one map epoch written once.
            Assert.True(Geo.Storage.Migrations.DirectoryMigrator.Schema.Scripts.Count >= 2);
            Assert.Equal(Geo.Storage.Migrations.DirectoryMigrator.Schema.Scripts.Count * 100L + 1, await command.ExecuteScalarAsync(Ct));
            Assert.All(hosts, h => h.AssertNoErrors());
        }
        finally
        {
            foreach (var host in hosts)
            {
                await host.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Health_and_metrics_answer_over_h2c_with_the_cache_hit_ratio()
    {
        var database = await postgres.CreateDatabaseAsync("dir_http", Ct);
        await using var host = await DirectoryHost.StartAsync(database);
        var id = UserTests.NewId();
        await host.Client.CreateUserAsync(new CreateUserRequest { UserId = id, Residency = "eu", HomeRegion = "eu-west" }, cancellationToken: Ct);
        for (var i = 0; i < 4; i++)
        {
            await host.Client.GetUserAsync(new GetUserRequest { UserId = id }, cancellationToken: Ct);
        }

        using var http = H2c(host);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct)).StatusCode);
        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct);

        // Every directory host of this test process feeds the same exporter, so the exact figure is read from this host.
        Assert.Contains("geo_directory_user_cache_hit_ratio", metrics, StringComparison.Ordinal);
        Assert.Equal(0.75, host.Services.GetRequiredService<UserCache>().HitRatio(), 3);
        Assert.Contains("geo_directory_shard_map_epoch", metrics, StringComparison.Ordinal);
        host.AssertNoErrors();
    }

    [Fact]
    public async Task Readiness_fails_while_the_directory_database_is_unreachable()
    {
        var database = await postgres.CreateDatabaseAsync("dir_ready", Ct);
        await using var host = await DirectoryHost.StartAsync(database);
        await using (var admin = new Npgsql.NpgsqlConnection(postgres.AdminConnectionString))
        {
            await admin.OpenAsync(Ct);
            var name = new Npgsql.NpgsqlConnectionStringBuilder(database).Database;
            await using var block = new Npgsql.NpgsqlCommand($"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'", admin);
            await block.ExecuteNonQueryAsync(Ct);
            Npgsql.NpgsqlConnection.ClearAllPools();
            using var http = H2c(host);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct)).StatusCode);
            var error = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () => await host.Client.GetUserAsync(new GetUserRequest { UserId = UserTests.NewId() }, cancellationToken: Ct));
            Assert.Equal(global::Grpc.Core.StatusCode.Unavailable, error.StatusCode);
            await using var allow = new Npgsql.NpgsqlCommand($"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true", admin);
            await allow.ExecuteNonQueryAsync(Ct);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct)).StatusCode);
        }

        // The health-check service reports an unhealthy check at Error itself; nothing else may.
        host.AssertNoErrors("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService");
    }

    private static HttpClient H2c(DirectoryHost host) => Geo.Testing.Services.TestCredentials.CreateClient(host.Address, TimeSpan.FromSeconds(100), http2: true);
}
