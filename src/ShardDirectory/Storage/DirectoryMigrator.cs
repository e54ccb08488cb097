using System.Security.Cryptography;
using System.Text;
using Dapper;
using Npgsql;

namespace Geo.ShardDirectory.Storage;

/// <summary>
/// Applies the embedded forward-only migrations (<c>Storage/Migrations/NNNN_name.sql</c>) to the directory database
/// in one transaction under an advisory lock, recording each in <c>geo_directory_schema_journal</c>; safe to run
/// from several directory processes at once.
/// </summary>
internal static class DirectoryMigrator
{
    private const string ResourcePrefix = "Geo.ShardDirectory.Storage.Migrations.";

    // Arbitrary constant shared by every directory migrator: "geo_dir".
    private const long LockKey = 0x6765_6F5F_6469_72;

    private const string PrepareSql = """
        SELECT pg_advisory_xact_lock(@LockKey);
        CREATE TABLE IF NOT EXISTS geo_directory_schema_journal (
            id         text        PRIMARY KEY,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        """;

    private const string JournalSql = "SELECT id AS Id, checksum AS Checksum FROM geo_directory_schema_journal";

    private const string RecordSql = "INSERT INTO geo_directory_schema_journal (id, checksum) VALUES (@Id, @Checksum)";

    public static IReadOnlyList<(string Id, string Sql, string Checksum)> Scripts { get; } = LoadScripts();

    /// <summary>Applies the scripts the database lacks; returns their ids.</summary>
    public static async Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(PrepareSql, new { LockKey }, tx, cancellationToken: ct));
        var journal = (await connection.QueryAsync<(string Id, string Checksum)>(new CommandDefinition(JournalSql, transaction: tx, cancellationToken: ct)))
            .ToDictionary(row => row.Id, row => row.Checksum, StringComparer.Ordinal);
        var applied = new List<string>();
        foreach (var (id, sql, checksum) in Scripts)
        {
            if (journal.TryGetValue(id, out var recorded))
            {
                if (recorded != checksum)
                {
                    throw new InvalidOperationException(
                        $"Directory migration {id} changed after it was applied (journal {recorded}, embedded {checksum}); migrations are forward-only: restore the file and add a new one.");
                }

                continue;
            }

            await connection.ExecuteAsync(new CommandDefinition(sql, transaction: tx, cancellationToken: ct));
            await connection.ExecuteAsync(new CommandDefinition(RecordSql, new { Id = id, Checksum = checksum }, tx, cancellationToken: ct));
            applied.Add(id);
        }

        await tx.CommitAsync(ct);
        return applied;
    }

    private static List<(string Id, string Sql, string Checksum)> LoadScripts()
    {
        var assembly = typeof(DirectoryMigrator).Assembly;
        var scripts = new List<(string, string, string)>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var reader = new StreamReader(assembly.GetManifestResourceStream(name)!, Encoding.UTF8);
            var sql = reader.ReadToEnd().ReplaceLineEndings("\n");
            scripts.Add((name[ResourcePrefix.Length..^".sql".Length], sql, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql)))));
        }

        return scripts;
    }
}
