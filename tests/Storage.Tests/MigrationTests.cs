using Geo.Storage.Migrations;
using Geo.Testing;
using Npgsql;

namespace Geo.Storage.Tests;

public sealed class MigrationTests(PostgresServer server)
{
    [Fact]
    public async Task Two_concurrent_migrations_both_succeed_and_apply_each_script_once()
    {
        var connectionString = await server.CreateDatabaseAsync("migrations", TestContext.Current.CancellationToken);
        await using var a = NpgsqlDataSource.Create(connectionString);
        await using var b = NpgsqlDataSource.Create(connectionString);
        var ct = TestContext.Current.CancellationToken;

        var results = await Task.WhenAll(ShardMigrator.MigrateAsync(a, ct), ShardMigrator.MigrateAsync(b, ct));

        var expected = ShardMigrator.Embedded.Select(m => m.Id).ToList();
        Assert.NotEmpty(expected);
        Assert.Equal(expected, results.SelectMany(r => r).Order(StringComparer.Ordinal).ToList());
        Assert.Contains(results, r => r.Count == 0); // the loser of the lock found everything applied
        await using var connection = await a.OpenConnectionAsync(ct);
        await using var command = new NpgsqlCommand("SELECT id FROM geo_schema_journal ORDER BY id", connection);
        var journal = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                journal.Add(reader.GetString(0));
            }
        }

        Assert.Equal(expected, journal);
        Assert.Empty(await ShardMigrator.MigrateAsync(a, ct));
    }

    [Fact]
    public async Task A_migration_edited_after_it_was_applied_is_refused()
    {
        var connectionString = await server.CreateDatabaseAsync("migrations", TestContext.Current.CancellationToken);
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var ct = TestContext.Current.CancellationToken;
        await ShardMigrator.MigrateAsync(dataSource, ct);
        await using (var command = dataSource.CreateCommand("UPDATE geo_schema_journal SET checksum = 'edited' WHERE id = '0001_initial'"))
        {
            Assert.Equal(1, await command.ExecuteNonQueryAsync(ct));
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ShardMigrator.MigrateAsync(dataSource, ct));
        Assert.Contains("0001_initial", error.Message, StringComparison.Ordinal);
    }
}
