using Geo.Storage.Caching;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Geo.RegionService.Sharding;

/// <summary>Ready when every local shard is migrated and answers a query.</summary>
internal sealed class ShardsHealthCheck(ShardRouter router, ShardMigrations migrations) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!migrations.IsComplete)
        {
            return HealthCheckResult.Unhealthy("shards not migrated yet");
        }

        foreach (var (shardId, dataSource) in router.DataSources)
        {
            try
            {
                await using var command = dataSource.CreateCommand("SELECT 1");
                command.CommandTimeout = 2;
                await command.ExecuteScalarAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return HealthCheckResult.Unhealthy($"shard {shardId}: {ex.Message}");
            }
        }

        return HealthCheckResult.Healthy();
    }
}

/// <summary>Ready once a shard map is known (the service keeps serving from it while the directory is down).</summary>
internal sealed class DirectoryHealthCheck(IShardMapSource maps) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(maps.Current is { } snapshot
            ? HealthCheckResult.Healthy($"shard map epoch {snapshot.Map.Epoch}")
            : HealthCheckResult.Unhealthy("no shard map from the directory yet"));
}

/// <summary>Redis is optional: down means degraded (reads go to Postgres), never unready.</summary>
internal sealed class CacheHealthCheck(DocumentCache cache) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(cache.IsConnected ? HealthCheckResult.Healthy() : HealthCheckResult.Degraded("Redis unreachable; serving from Postgres"));
}
