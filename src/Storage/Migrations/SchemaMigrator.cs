using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Geo.Storage.Migrations;

/// <summary>
/// The one migration runner of Geo's databases (a shard's and a region's directory's): applies embedded forward-only SQL
/// scripts in ordinal order, in one transaction under an advisory lock (safe when several processes start at once), and
/// records each in a journal table. A database that is up to date is only read: no DDL runs, so a service connecting as
/// a login without <c>CREATE</c> on the schema (docs/operations.md, "Database roles") starts normally; if scripts are
/// pending and the login may not create, it fails with <see cref="MigrationPrivilegeException"/> naming the fix.
/// </summary>
public sealed class SchemaMigrator
{
    private readonly string _journal;
    private readonly long _lockKey;

    /// <param name="name">What the schema is, for messages ("shard", "directory").</param>
    /// <param name="journal">The journal table (a plain identifier).</param>
    /// <param name="lockKey">The advisory lock every migrator of this schema takes.</param>
    /// <param name="scripts">The migrations, ordered by id.</param>
    public SchemaMigrator(string name, string journal, long lockKey, IReadOnlyList<Migration> scripts)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(scripts);
        if (!journal.All(c => char.IsAsciiLetterLower(c) || c == '_'))
        {
            throw new ArgumentException("The journal must be a plain lower-case identifier.", nameof(journal));
        }

        Name = name;
        _journal = journal;
        _lockKey = lockKey;
        Scripts = scripts;
    }

    /// <summary>What the schema is ("shard", "directory").</summary>
    public string Name { get; }

    /// <summary>The migrations this build carries, ordered by id.</summary>
    public IReadOnlyList<Migration> Scripts { get; }

    /// <summary>Applies every migration the database lacks, in one transaction; returns the ids it applied.</summary>
    /// <exception cref="InvalidOperationException">An applied migration's text changed since (migrations are forward-only).</exception>
    /// <exception cref="MigrationPrivilegeException">Migrations are pending and the login may not create in the schema.</exception>
    public async Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, ILogger? logger = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        logger ??= NullLogger.Instance;
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@LockKey)", new { LockKey = _lockKey }, tx, cancellationToken: ct));
        var pending = await PendingCoreAsync(connection, tx, ct);
        if (pending.Count == 0)
        {
            await tx.CommitAsync(ct);
            logger.MigrationsUpToDate(Name, connection.Database);
            return [];
        }

        var mayCreate = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT has_schema_privilege(current_user, current_schema(), 'CREATE')", transaction: tx, cancellationToken: ct));
        if (!mayCreate)
        {
            throw new MigrationPrivilegeException(
                $"The {Name} database {connection.Database} lacks migration(s) {string.Join(", ", pending.Select(m => m.Id))}, and the login "
                + $"'{connection.UserName}' may not create in its schema: run `geoctl migrate` as the migration login first (docs/operations.md, \"Database roles\").");
        }

        await connection.ExecuteAsync(new CommandDefinition(
            $"CREATE TABLE IF NOT EXISTS {_journal} (id text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
            transaction: tx, cancellationToken: ct));
        foreach (var migration in pending)
        {
            await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: tx, cancellationToken: ct));
            await connection.ExecuteAsync(new CommandDefinition(
                $"INSERT INTO {_journal} (id, checksum) VALUES (@Id, @Checksum)", new { migration.Id, migration.Checksum }, tx, cancellationToken: ct));
        }

        await tx.CommitAsync(ct);
        foreach (var migration in pending)
        {
            logger.MigrationApplied(migration.Id, Name, connection.Database);
        }

        return [.. pending.Select(m => m.Id)];
    }

    /// <summary>The ids <see cref="MigrateAsync"/> would apply; reads only.</summary>
    public async Task<IReadOnlyList<string>> PendingAsync(NpgsqlDataSource dataSource, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        return [.. (await PendingCoreAsync(connection, null, ct)).Select(m => m.Id)];
    }

    /// <summary>Loads the <c>.sql</c> resources of <paramref name="assembly"/> under <paramref name="prefix"/>, ordered by id.</summary>
    public static IReadOnlyList<Migration> LoadEmbedded(Assembly assembly, string prefix)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        return
        [
            .. assembly.GetManifestResourceNames()
                .Where(name => name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(".sql", StringComparison.Ordinal))
                .Select(name => Load(assembly, name, name[prefix.Length..^".sql".Length]))
                .OrderBy(m => m.Id, StringComparer.Ordinal),
        ];
    }

    private async Task<List<Migration>> PendingCoreAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, CancellationToken ct)
    {
        var exists = await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "SELECT to_regclass(@Journal) IS NOT NULL", new { Journal = _journal }, tx, cancellationToken: ct));
        var journal = exists
            ? (await connection.QueryAsync<(string Id, string Checksum)>(new CommandDefinition($"SELECT id, checksum FROM {_journal}", transaction: tx, cancellationToken: ct)))
                .ToDictionary(row => row.Id, row => row.Checksum, StringComparer.Ordinal)
            : [];
        var pending = new List<Migration>();
        foreach (var migration in Scripts)
        {
            if (!journal.TryGetValue(migration.Id, out var checksum))
            {
                pending.Add(migration);
            }
            else if (checksum != migration.Checksum)
            {
                throw new InvalidOperationException(
                    $"{Name} migration {migration.Id} was changed after it was applied (journal checksum {checksum}, embedded {migration.Checksum}). Migrations are forward-only: restore the original file and add a new migration.");
            }
        }

        return pending;
    }

    private static Migration Load(Assembly assembly, string resource, string id)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var sql = reader.ReadToEnd().ReplaceLineEndings("\n");
        return new Migration(id, sql, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql))));
    }
}

/// <summary>Migrations are pending and the service's login may not run DDL: migrate with the migration login first.</summary>
public sealed class MigrationPrivilegeException(string message) : InvalidOperationException(message);
