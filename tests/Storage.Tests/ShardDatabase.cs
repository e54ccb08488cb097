using Dapper;
using Geo.Core.Clock;
using Geo.Storage.Migrations;
using Geo.Testing;
using Npgsql;

namespace Geo.Storage.Tests;

/// <summary>A migrated shard database per test class; tests isolate themselves with fresh user ids.</summary>
public sealed class ShardDatabase(PostgresServer server) : IAsyncLifetime
{
    private readonly List<NpgsqlDataSource> _dataSources = [];

    public PostgresServer Server => server;

    public string ConnectionString { get; private set; } = string.Empty;

    public NpgsqlDataSource DataSource { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        ConnectionString = await server.CreateDatabaseAsync("storage_tests");
        DataSource = NewDataSource();
        await ShardMigrator.MigrateAsync(DataSource);
    }

    /// <summary>Another data source (own pool, own connections) on the same database.</summary>
    public NpgsqlDataSource NewDataSource()
    {
        var dataSource = NpgsqlDataSource.Create(ConnectionString);
        lock (_dataSources)
        {
            _dataSources.Add(dataSource);
        }

        return dataSource;
    }

    /// <summary>A store for <paramref name="region"/> with its own clock, on the shared or a fresh data source.</summary>
    public ShardStore Store(string region = "us-east", TimeProvider? time = null, NpgsqlDataSource? dataSource = null) =>
        new($"{region}-0", region, dataSource ?? DataSource, new HybridLogicalClock(time ?? TimeProvider.System, TimeSpan.FromMinutes(5)), time);

    public async Task<T> ScalarAsync<T>(string sql, object? args = null)
    {
        await using var connection = await DataSource.OpenConnectionAsync();
        return await connection.ExecuteScalarAsync<T>(sql, args) ?? throw new InvalidOperationException($"no value: {sql}");
    }

    public async Task<List<T>> QueryAsync<T>(string sql, object? args = null)
    {
        await using var connection = await DataSource.OpenConnectionAsync();
        return [.. await connection.QueryAsync<T>(sql, args)];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var dataSource in _dataSources)
        {
            await dataSource.DisposeAsync();
        }
    }

    public static string NewUserId() => Guid.CreateVersion7().ToString();
}
