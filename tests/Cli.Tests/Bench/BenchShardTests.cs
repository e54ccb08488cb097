using Geo.Testing;
using Npgsql;

namespace Geo.Cli.Tests.Bench;

public sealed class BenchShardTests(PostgresServer postgres)
{
    private readonly CliRunner _cli = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Bench_shard_measures_operations_on_a_scratch_database_and_leaves_no_rows()
    {
        var database = await postgres.CreateDatabaseAsync("geoctl_bench", Ct);

        var result = await _cli.RunAsync("bench", "shard", "--connection", database, "--duration", "2", "--concurrency", "4", "--users", "50",
            "--yes", "-o", "json");

        Assert.True(result.ExitCode == 0, result.ToString());
        var json = result.Json();
        var reads = json.GetProperty("readsPerSecond").GetDouble();
        var writes = json.GetProperty("writesPerSecond").GetDouble();
        Assert.True(reads > 0 && writes > 0, result.Stdout);
        Assert.Equal(reads + writes, json.GetProperty("operationsPerSecond").GetDouble(), 0.5);
        Assert.Equal(0, json.GetProperty("errors").GetInt64());
        Assert.Equal(0, await CountAsync(database, "SELECT count(*) FROM documents"));
        Assert.Equal(0, await CountAsync(database, "SELECT count(*) FROM change_log"));
    }

    [Fact]
    public async Task Bench_shard_refuses_a_database_with_geo_data_and_a_run_without_a_token()
    {
        var database = await postgres.CreateDatabaseAsync("geoctl_bench_live", Ct);
        var first = await _cli.RunAsync("bench", "shard", "--connection", database, "--duration", "1", "--concurrency", "1", "--yes");
        Assert.True(first.ExitCode == 0, first.ToString());
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync(Ct);
            await using var insert = new NpgsqlCommand(
                "INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, updated_at) VALUES ('real-user', 'c', 'k', 1, '{}', false, 1, 'us-east', now())",
                connection);
            await insert.ExecuteNonQueryAsync(Ct);
        }

        var live = await _cli.RunAsync("bench", "shard", "--connection", database, "--duration", "1", "--yes");
        var badDuration = await _cli.RunAsync("bench", "shard", "--connection", database, "--duration", "0", "--yes");
        _cli.Environment.Remove("GEO_PKI");
        var noToken = await _cli.RunAsync("bench", "shard", "--connection", database, "--duration", "1", "--yes");

        Assert.Equal(4, live.ExitCode);
        Assert.Contains("scratch database", live.Stderr, StringComparison.Ordinal);
        Assert.Equal(4, noToken.ExitCode);
        Assert.Equal(2, badDuration.ExitCode);
        Assert.Equal(1, await CountAsync(database, "SELECT count(*) FROM documents"));
    }

    private static async Task<long> CountAsync(string database, string sql)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(Ct), System.Globalization.CultureInfo.InvariantCulture);
    }
}
