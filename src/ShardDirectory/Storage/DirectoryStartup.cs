using Geo.Storage.Migrations;
using Geo.ShardDirectory.Hosting;
using Geo.ShardDirectory.ShardMaps;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Geo.ShardDirectory.Storage;

/// <summary>Set once the directory database is migrated and holds this region's map.</summary>
internal sealed class DirectoryReadiness
{
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsReady => _ready.Task.IsCompleted;

    public void MarkReady() => _ready.TrySetResult();

    public Task WaitAsync(CancellationToken ct) => _ready.Task.WaitAsync(ct);
}

/// <summary>
/// Before the server listens: migrates the directory database and writes the region's balanced first map if it has
/// none. A database that is not reachable yet is retried for <see cref="StartupBudget"/>, then start-up fails.
/// </summary>
internal sealed partial class DirectoryStartup(
    NpgsqlDataSource dataSource,
    ShardMapStore maps,
    DirectoryReadiness readiness,
    DirectorySite site,
    TimeProvider time,
    ILogger<DirectoryStartup> logger) : IHostedService
{
    private static readonly TimeSpan StartupBudget = TimeSpan.FromSeconds(30);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        while (true)
        {
            try
            {
                var applied = await DirectoryMigrator.Schema.MigrateAsync(dataSource, logger, cancellationToken);
                LogMigrated(logger, site.RegionId, applied.Count == 0 ? "none" : string.Join(", ", applied));
                await maps.EnsureInitialAsync(site.RegionId, site.Region.Shards.Keys, cancellationToken);
                await maps.RefreshAsync(site.RegionId, cancellationToken);
                readiness.MarkReady();
                return;
            }
            catch (NpgsqlException e) when (e.IsTransient && time.GetElapsedTime(started) < StartupBudget)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), time, cancellationToken);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = EventIds.Migrated, Level = LogLevel.Information, Message = "Directory database of {RegionId} migrated (applied: {Applied})")]
    private static partial void LogMigrated(ILogger logger, string regionId, string applied);
}

/// <summary>Ready when start-up finished and the directory database answers.</summary>
internal sealed class DirectoryDatabaseHealthCheck(NpgsqlDataSource dataSource, DirectoryReadiness readiness) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!readiness.IsReady)
        {
            return HealthCheckResult.Unhealthy("the directory database is not migrated yet");
        }

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(timeout.Token);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy("the directory database does not answer", e);
        }
    }
}
