using Microsoft.Extensions.Logging;
using Npgsql;

namespace Geo.Storage.Migrations;

/// <summary>The shard schema (<c>Migrations/NNNN_name.sql</c>, journal <c>geo_schema_journal</c>), run by <see cref="SchemaMigrator"/>.</summary>
public static class ShardMigrator
{
    // Arbitrary constant: the advisory lock every migrator of any shard database takes ("geo_mig").
    private const long LockKey = 0x6765_6F5F_6D69_67;

    /// <summary>The runner of the shard schema.</summary>
    public static SchemaMigrator Schema { get; } = new("shard", "geo_schema_journal", LockKey,
        SchemaMigrator.LoadEmbedded(typeof(ShardMigrator).Assembly, "Geo.Storage.Migrations."));

    /// <summary>The migrations this build carries, ordered by id.</summary>
    public static IReadOnlyList<Migration> Embedded => Schema.Scripts;

    /// <inheritdoc cref="SchemaMigrator.MigrateAsync"/>
    public static Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct = default) =>
        Schema.MigrateAsync(dataSource, null, ct);

    /// <inheritdoc cref="SchemaMigrator.MigrateAsync"/>
    public static Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, ILogger logger, CancellationToken ct = default) =>
        Schema.MigrateAsync(dataSource, logger, ct);
}

/// <summary>The directory schema of a region (<c>Directory/Migrations/NNNN_name.sql</c>, journal <c>geo_directory_schema_journal</c>).</summary>
public static class DirectoryMigrator
{
    // Arbitrary constant shared by every directory migrator ("geo_dir").
    private const long LockKey = 0x6765_6F5F_6469_72;

    /// <summary>The runner of the directory schema.</summary>
    public static SchemaMigrator Schema { get; } = new("directory", "geo_directory_schema_journal", LockKey,
        SchemaMigrator.LoadEmbedded(typeof(DirectoryMigrator).Assembly, "Geo.Storage.Directory.Migrations."));
}

/// <summary>One embedded migration.</summary>
/// <param name="Id">File name without extension, e.g. <c>0001_initial</c>; applied in ordinal order.</param>
/// <param name="Sql">The script.</param>
/// <param name="Checksum">SHA-256 of the script (LF line endings), hex.</param>
public sealed record Migration(string Id, string Sql, string Checksum);
