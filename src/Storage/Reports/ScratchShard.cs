using Dapper;
using Npgsql;

namespace Geo.Storage.Reports;

/// <summary>
/// A scratch database with the shard schema that a benchmark writes to (<c>geoctl bench shard</c>): its users' ids
/// share a prefix, so what is not theirs can be counted (a live shard must never be used) and theirs deleted after.
/// </summary>
public static class ScratchShard
{
    // Geo tables holding anything but the prefix's rows: documents of other users, any counter, any erase marker.
    private const string ForeignRowsSql = """
        SELECT (SELECT count(*) FROM documents WHERE user_id NOT LIKE @Pattern) + (SELECT count(*) FROM counters) + (SELECT count(*) FROM erased_users)
        """;

    private const string CleanSql = """
        DELETE FROM documents WHERE user_id LIKE @Pattern;
        DELETE FROM change_log WHERE user_id LIKE @Pattern;
        """;

    /// <summary>Rows of the shard schema that are not the benchmark users' (ids starting with <paramref name="userPrefix"/>).</summary>
    public static Task<long> ForeignRowsAsync(NpgsqlConnection connection, string userPrefix, CancellationToken ct) =>
        connection.ExecuteScalarAsync<long>(new CommandDefinition(ForeignRowsSql, new { Pattern = Pattern(userPrefix) }, cancellationToken: ct));

    /// <summary>Deletes the benchmark users' documents and change-log entries (no command timeout: it takes what it takes).</summary>
    public static Task DeleteAsync(NpgsqlConnection connection, string userPrefix, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition(CleanSql, new { Pattern = Pattern(userPrefix) }, commandTimeout: 0, cancellationToken: ct));

    // LIKE's own characters in the prefix are escaped, so the pattern matches the prefix literally.
    private static string Pattern(string userPrefix) =>
        userPrefix.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal) + "%";
}
