using Geo.Testing;
using StackExchange.Redis;

namespace Geo.Storage.Tests;

public sealed class FixtureTests(PostgresServer postgres)
{
    [Fact]
    public void Postgres_runs_from_local_binaries_when_no_server_or_docker_is_configured()
    {
        TestContext.Current.SendDiagnosticMessage($"PostgresServer mode: {postgres.Mode}");
        TestContext.Current.TestOutputHelper?.WriteLine($"PostgresServer mode: {postgres.Mode}");
        var expected = Environment.GetEnvironmentVariable(PostgresServer.EnvironmentVariable) is { Length: > 0 } ? "external"
            : File.Exists("/var/run/docker.sock") || Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } ? postgres.Mode
            : "local-binaries";
        Assert.Equal(expected, postgres.Mode);
    }

    [Fact]
    public async Task Fresh_databases_are_empty_and_distinct()
    {
        var a = await postgres.CreateDatabaseAsync("fixture", TestContext.Current.CancellationToken);
        var b = await postgres.CreateDatabaseAsync("fixture", TestContext.Current.CancellationToken);
        Assert.NotEqual(a, b);
        await using var connection = new Npgsql.NpgsqlConnection(a);
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = new Npgsql.NpgsqlCommand("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", connection);
        Assert.Equal(0L, await command.ExecuteScalarAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Redis_can_be_stopped_and_restarted_on_the_same_port()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var redis = new RedisServer();
        await redis.InitializeAsync();
        TestContext.Current.TestOutputHelper?.WriteLine($"RedisServer mode: {redis.Mode}");
        if (redis.Mode == "external")
        {
            return;
        }

        var port = redis.ConnectionString;
        await using (var mux = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            await mux.GetDatabase().StringSetAsync("k", "v");
            Assert.Equal("v", (string?)await mux.GetDatabase().StringGetAsync("k"));
        }

        await redis.StopAsync(ct);
        Assert.False(redis.IsRunning);
        await using (var mux = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            await Assert.ThrowsAsync<RedisConnectionException>(() => mux.GetDatabase().StringGetAsync("k"));
        }

        await redis.StartAsync(ct);
        Assert.Equal(port, redis.ConnectionString);
        await using (var mux = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            Assert.True((await mux.GetDatabase().PingAsync()) >= TimeSpan.Zero);
            Assert.False((await mux.GetDatabase().StringGetAsync("k")).HasValue); // no persistence: a restart starts empty
        }
    }
}
