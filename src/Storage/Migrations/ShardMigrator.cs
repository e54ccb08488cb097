using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Geo.Storage.Migrations;

/// <summary>
/// Applies the embedded forward-only SQL migrations (<c>Migrations/NNNN_name.sql</c>) to one shard, in order,
/// recording each in <c>geo_schema_journal</c>. Safe when several processes migrate the same shard at once.
/// </summary>
public static partial class ShardMigrator
{
    // Arbitrary constant: the advisory lock every migrator of any shard database takes.
    private const long LockKey = 0x6765_6F5F_6D69_67; // "geo_mig"

    private const string CreateJournalSql = """
        CREATE TABLE IF NOT EXISTS geo_schema_journal (
            id         text        PRIMARY KEY,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """;

    private const string ReadJournalSql = "SELECT id, checksum FROM geo_schema_journal";

    private const string RecordSql = "INSERT INTO geo_schema_journal (id, checksum) VALUES (@Id, @Checksum)";

    /// <summary>The migrations this build carries, ordered by id.</summary>
    public static IReadOnlyList<Migration> Embedded { get; } = LoadEmbedded();

    /// <summary>Applies every migration the shard lacks, in one transaction; returns the ids it applied.</summary>
    /// <exception cref="InvalidOperationException">An applied migration's text changed since (migrations are forward-only).</exception>
    public static async Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct = default) =>
        await MigrateAsync(dataSource, NullLogger.Instance, ct);

    /// <inheritdoc cref="MigrateAsync(NpgsqlDataSource, CancellationToken)"/>
    public static async Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, ILogger logger, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(logger);
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@LockKey)", new { LockKey }, tx, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition(CreateJournalSql, transaction: tx, cancellationToken: ct));
        var journal = (await connection.QueryAsync<(string Id, string Checksum)>(new CommandDefinition(ReadJournalSql, transaction: tx, cancellationToken: ct)))
            .ToDictionary(row => row.Id, row => row.Checksum, StringComparer.Ordinal);

        var applied = new List<string>();
        foreach (var migration in Embedded)
        {
            if (journal.TryGetValue(migration.Id, out var checksum))
            {
                if (checksum != migration.Checksum)
                {
                    throw new InvalidOperationException(
                        $"Migration {migration.Id} was changed after it was applied (journal checksum {checksum}, embedded {migration.Checksum}). Migrations are forward-only: restore the original file and add a new migration.");
                }

                continue;
            }

            await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: tx, cancellationToken: ct));
            await connection.ExecuteAsync(new CommandDefinition(RecordSql, new { migration.Id, migration.Checksum }, tx, cancellationToken: ct));
            applied.Add(migration.Id);
        }

        await tx.CommitAsync(ct);
        foreach (var id in applied)
        {
            LogApplied(logger, id, connection.Database);
        }

        if (applied.Count == 0)
        {
            LogUpToDate(logger, connection.Database);
        }

        return applied;
    }

    private static List<Migration> LoadEmbedded()
    {
        var assembly = typeof(ShardMigrator).Assembly;
        const string prefix = "Geo.Storage.Migrations.";
        return
        [
            .. assembly.GetManifestResourceNames()
                .Where(name => name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(".sql", StringComparison.Ordinal))
                .Select(name => Load(assembly, name, name[prefix.Length..^".sql".Length]))
                .OrderBy(m => m.Id, StringComparer.Ordinal),
        ];
    }

    private static Migration Load(Assembly assembly, string resource, string id)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var sql = reader.ReadToEnd().ReplaceLineEndings("\n");
        return new Migration(id, sql, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql))));
    }

    [LoggerMessage(EventId = EventIds.MigrationApplied, Level = LogLevel.Information, Message = "Applied migration {MigrationId} to {Database}")]
    private static partial void LogApplied(ILogger logger, string migrationId, string database);

    [LoggerMessage(EventId = EventIds.MigrationsUpToDate, Level = LogLevel.Debug, Message = "Schema of {Database} is up to date")]
    private static partial void LogUpToDate(ILogger logger, string database);
}

/// <summary>One embedded migration.</summary>
/// <param name="Id">File name without extension, e.g. <c>0001_initial</c>; applied in ordinal order.</param>
/// <param name="Sql">The script.</param>
/// <param name="Checksum">SHA-256 of the script (LF line endings), hex.</param>
public sealed record Migration(string Id, string Sql, string Checksum);
