using Geo.Storage.Migrations;
using Geo.Testing;
using Npgsql;

namespace Geo.Cli.Tests.Migrations;

public sealed class MigrateCommandTests(PostgresServer postgres) : IDisposable
{
    private readonly CliRunner _cli = new();
    private readonly TestTopologies _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public async Task Migrate_applies_every_migration_to_every_shard_once_and_a_second_run_applies_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var shard0 = await postgres.CreateDatabaseAsync("geoctl_migrate", ct);
        var shard1 = await postgres.CreateDatabaseAsync("geoctl_migrate", ct);
        var topology = _files.WithShards(new Dictionary<string, string> { ["us-east-0"] = shard0, ["us-east-1"] = shard1 });
        var all = ShardMigrator.Embedded.Select(m => m.Id).ToArray();
        Assert.NotEmpty(all);

        var dryRun = await _cli.RunAsync("migrate", "--topology", topology, "--dry-run", "-o", "json");
        var first = await _cli.RunAsync("migrate", "--topology", topology, "--yes", "-o", "json");
        var second = await _cli.RunAsync("migrate", "--topology", topology, "--yes", "-o", "json");
        var dryRunAfter = await _cli.RunAsync("migrate", "--topology", topology, "--dry-run", "-o", "json");

        Assert.True(dryRun.ExitCode == 0, dryRun.ToString());
        AssertEvery(dryRun, "pending", all);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal(["us-east-0", "us-east-1"], Shards(first).Select(s => s.Shard));
        AssertEvery(first, "migrated", all);
        Assert.True(second.ExitCode == 0, second.ToString());
        AssertEvery(second, "upToDate", []);
        AssertEvery(dryRunAfter, "upToDate", []);
        foreach (var shard in new[] { shard0, shard1 })
        {
            Assert.Equal(all, await JournalAsync(shard, ct));
        }
    }

    [Fact]
    public async Task Migrate_applies_the_directory_schema_of_each_region_too()
    {
        var ct = TestContext.Current.CancellationToken;
        var shard = await postgres.CreateDatabaseAsync("geoctl_migrate_shard", ct);
        var directory = await postgres.CreateDatabaseAsync("geoctl_migrate_directory", ct);
        var topology = _files.WithShards(new Dictionary<string, string> { ["us-east-0"] = shard }, directoryDatabase: directory);

        var first = await _cli.RunAsync("migrate", "--topology", topology, "--yes", "-o", "json");
        var second = await _cli.RunAsync("migrate", "--topology", topology, "--dry-run", "-o", "json");

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal(
            [("us-east-0", "migrated"), ("us-east-directory", "migrated")],
            Shards(first).Select(s => (s.Shard, s.Status)));
        Assert.Equal(DirectoryMigrator.Schema.Scripts.Select(m => m.Id), Shards(first)[1].Migrations);
        AssertEvery(second, "upToDate", []);
        await using var dataSource = NpgsqlDataSource.Create(directory);
        Assert.Empty(await DirectoryMigrator.Schema.PendingAsync(dataSource, ct));
    }

    [Fact]
    public async Task A_dry_run_changes_nothing_and_needs_no_token()
    {
        var ct = TestContext.Current.CancellationToken;
        var shard = await postgres.CreateDatabaseAsync("geoctl_dry", ct);
        var topology = _files.WithShards(new Dictionary<string, string> { ["us-east-0"] = shard });

        var result = await _cli.RunAsync("migrate", "--topology", topology, "--dry-run");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("dry run", result.Stdout, StringComparison.Ordinal);
        Assert.Contains(ShardMigrator.Embedded[0].Id, result.Stdout, StringComparison.Ordinal);
        Assert.Empty(await JournalAsync(shard, ct));
    }

    [Fact]
    public async Task Region_and_shard_options_choose_the_targets()
    {
        var ct = TestContext.Current.CancellationToken;
        var chosen = await postgres.CreateDatabaseAsync("geoctl_chosen", ct);
        var other = await postgres.CreateDatabaseAsync("geoctl_other", ct);
        var topology = _files.WithShards(new Dictionary<string, string> { ["us-east-0"] = other, ["us-east-1"] = chosen });

        var result = await _cli.RunAsync("migrate", "--topology", topology, "--region", "us-east", "--shard", "us-east-1", "--yes", "-o", "json");
        var unknownRegion = await _cli.RunAsync("migrate", "--topology", topology, "--region", "mars", "--dry-run");
        var unknownShard = await _cli.RunAsync("migrate", "--topology", topology, "--shard", "us-east-9", "--dry-run");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(["us-east-1"], Shards(result).Select(s => s.Shard));
        Assert.NotEmpty(await JournalAsync(chosen, ct));
        Assert.Empty(await JournalAsync(other, ct));
        Assert.Equal(3, unknownRegion.ExitCode);
        Assert.Contains("mars", unknownRegion.Stderr, StringComparison.Ordinal);
        Assert.Equal(3, unknownShard.ExitCode);
    }

    [Fact]
    public async Task An_unreachable_shard_is_reported_as_unavailable_with_exit_5_while_the_others_migrate()
    {
        var ct = TestContext.Current.CancellationToken;
        var reachable = await postgres.CreateDatabaseAsync("geoctl_reachable", ct);
        var missing = new NpgsqlConnectionStringBuilder(reachable) { Database = "geoctl_no_such_database" }.ConnectionString;
        var topology = _files.WithShards(new Dictionary<string, string> { ["us-east-0"] = reachable, ["us-east-1"] = missing });

        var result = await _cli.RunAsync("migrate", "--topology", topology, "--yes", "-o", "json");

        Assert.True(result.ExitCode == 5, result.ToString());
        Assert.Equal(["migrated", "unavailable"], Shards(result).Select(s => s.Status));
        Assert.Contains("us-east-1: unavailable", result.Stderr, StringComparison.Ordinal);
    }

    private static void AssertEvery(CliResult result, string status, string[] migrations) =>
        Assert.All(Shards(result), s =>
        {
            Assert.Equal(status, s.Status);
            Assert.Equal(migrations, s.Migrations);
        });

    private static List<(string Shard, string Status, string[] Migrations)> Shards(CliResult result) =>
    [
        .. result.Json().GetProperty("shards").EnumerateArray().Select(s => (
            s.GetProperty("shard").GetString()!,
            s.GetProperty("status").GetString()!,
            s.GetProperty("migrations").EnumerateArray().Select(m => m.GetString()!).ToArray())),
    ];

    private static async Task<List<string>> JournalAsync(string connectionString, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var exists = new NpgsqlCommand("SELECT to_regclass('geo_schema_journal') IS NOT NULL", connection);
        if (await exists.ExecuteScalarAsync(ct) is not true)
        {
            return [];
        }

        await using var read = new NpgsqlCommand("SELECT id FROM geo_schema_journal ORDER BY id", connection);
        await using var reader = await read.ExecuteReaderAsync(ct);
        var ids = new List<string>();
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetString(0));
        }

        return ids;
    }
}
