using Geo.Storage.Migrations;
using Geo.Testing;
using Npgsql;

namespace Geo.Storage.Tests;

/// <summary>
/// The services connect as a login without DDL rights (docs/operations.md, "Database roles"): once the migration login
/// migrated a database they start against it without running any DDL, and with scripts pending they fail naming the fix.
/// </summary>
public sealed class MigrationRoleTests(PostgresServer server)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Schemas => ["shard", "directory"];

    [Theory]
    [MemberData(nameof(Schemas))]
    public async Task A_login_without_DDL_rights_starts_on_a_migrated_database_and_runs_no_DDL(string schema)
    {
        var migrator = schema == "shard" ? ShardMigrator.Schema : DirectoryMigrator.Schema;
        var (owner, service) = await CreateDatabaseWithServiceLoginAsync(schema);
        await using (var asOwner = NpgsqlDataSource.Create(owner))
        {
            Assert.Equal(migrator.Scripts.Select(m => m.Id), await migrator.MigrateAsync(asOwner, null, Ct));
        }

        await using var asService = NpgsqlDataSource.Create(service);
        // The tables the owner created are readable through the default privileges; the login really has no DDL: what the migrators used to run first at every start-up is refused to it.
        var refused = await Assert.ThrowsAsync<PostgresException>(async () =>
        {
            await using var connection = await asService.OpenConnectionAsync(Ct);
            await using var create = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS geo_schema_journal (id text PRIMARY KEY)", connection);
            await create.ExecuteNonQueryAsync(Ct);
        });
        Assert.Equal(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState);

        Assert.Empty(await migrator.MigrateAsync(asService, null, Ct));
        Assert.Empty(await migrator.PendingAsync(asService, Ct));
    }

    [Fact]
    public async Task A_pending_migration_under_a_login_without_DDL_rights_fails_with_the_fix_and_changes_nothing()
    {
        var (owner, service) = await CreateDatabaseWithServiceLoginAsync("pending");
        await using (var asOwner = NpgsqlDataSource.Create(owner))
        {
            await ShardMigrator.MigrateAsync(asOwner, Ct);
        }

        // A newer build carrying one more script than the database holds.
        var newer = new SchemaMigrator("shard", "geo_schema_journal", 0x6765_6F5F_7465_7374,
            [.. ShardMigrator.Embedded, new Migration("9999_test_next", "CREATE TABLE test_next (id int)", "test-next")]);
        await using var asService = NpgsqlDataSource.Create(service);

        var failure = await Assert.ThrowsAsync<MigrationPrivilegeException>(() => newer.MigrateAsync(asService, null, Ct));

        Assert.Contains("9999_test_next", failure.Message, StringComparison.Ordinal);
        Assert.Contains("geoctl migrate", failure.Message, StringComparison.Ordinal);
        Assert.Equal(["9999_test_next"], await newer.PendingAsync(asService, Ct));
        await using var check = NpgsqlDataSource.Create(owner);
        await using var connection = await check.OpenConnectionAsync(Ct);
        await using var exists = new NpgsqlCommand("SELECT to_regclass('test_next') IS NULL", connection);
        Assert.Equal(true, await exists.ExecuteScalarAsync(Ct));
    }

    // A fresh database owned by the server's administrator and a login that may connect and use the schema only, as the
    // SQL of docs/operations.md sets it up.
    private async Task<(string Owner, string Service)> CreateDatabaseWithServiceLoginAsync(string name)
    {
        var owner = await server.CreateDatabaseAsync("roles_" + name, Ct);
        var login = "geo_svc_" + Guid.NewGuid().ToString("N")[..10];
        var database = new NpgsqlConnectionStringBuilder(owner).Database!;
        await using var dataSource = NpgsqlDataSource.Create(owner);
        await using var connection = await dataSource.OpenConnectionAsync(Ct);
        foreach (var sql in new[]
        {
            $"CREATE ROLE {login} LOGIN",
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            $"GRANT CONNECT ON DATABASE \"{database}\" TO {login}",
            $"GRANT USAGE ON SCHEMA public TO {login}",
            $"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {login}",
            $"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {login}",
        })
        {
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync(Ct);
        }

        return (owner, new NpgsqlConnectionStringBuilder(owner) { Username = login }.ConnectionString);
    }
}
