using Geo.Core.Clock;
using Geo.Core.Topology;
using Geo.Replicator.Hosting;
using Geo.Storage;
using Geo.Storage.Migrations;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Geo.Replicator.Sharding;

/// <summary>
/// This region's shards: one data source and <see cref="ShardStore"/> each. Migrates them at start-up (the migrator
/// locks, so racing a RegionService that does the same is safe); readiness waits for it.
/// </summary>
internal sealed partial class LocalShards : BackgroundService, IAsyncDisposable
{
    private readonly Dictionary<string, NpgsqlDataSource> _dataSources;
    private readonly TaskCompletionSource _migrated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ILogger<LocalShards> _logger;

    public LocalShards(GeoTopology topology, IOptions<GeoSiteOptions> site, HybridLogicalClock clock, TimeProvider time, ILoggerFactory loggers)
    {
        _logger = loggers.CreateLogger<LocalShards>();
        var region = topology.Region(site.Value.Region);
        RegionId = region.Id;
        _dataSources = region.Shards.ToDictionary(s => s.Key, s => CreateDataSource(s.Value, s.Key), StringComparer.Ordinal);
        Stores = _dataSources.ToDictionary(
            s => s.Key,
            s => new ShardStore(s.Key, region.Id, s.Value, clock, time, loggers.CreateLogger<ShardStore>()),
            StringComparer.Ordinal);
        Ids = [.. Stores.Keys.Order(StringComparer.Ordinal)];
    }

    public string RegionId { get; }

    /// <summary>Shard ids, sorted.</summary>
    public IReadOnlyList<string> Ids { get; }

    public IReadOnlyDictionary<string, ShardStore> Stores { get; }

    /// <summary>The shard that also keeps this region's directory-stream checkpoints (the first by id).</summary>
    public ShardStore CheckpointStore => Stores[Ids[0]];

    public bool IsMigrated => _migrated.Task.IsCompletedSuccessfully;

    public Task WhenMigrated(CancellationToken ct) => _migrated.Task.WaitAsync(ct);

    /// <summary>The store of <paramref name="shardId"/>, or an error naming the fix when the map names an unknown shard.</summary>
    public ShardStore Store(string shardId)
        => Stores.TryGetValue(shardId, out var store)
            ? store
            : throw new InvalidOperationException($"The shard map names shard '{shardId}', which is not in this region's topology; add it to the topology.");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = TimeSpan.FromMilliseconds(250);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                foreach (var (shardId, dataSource) in _dataSources)
                {
                    var applied = await ShardMigrator.MigrateAsync(dataSource, stoppingToken);
                    LogMigrated(_logger, shardId, applied.Count);
                }

                _migrated.TrySetResult();
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogMigrationRetry(_logger, ex.Message, delay.TotalMilliseconds);
                await Task.Delay(delay, stoppingToken);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var dataSource in _dataSources.Values)
        {
            await dataSource.DisposeAsync();
        }
    }

    private static NpgsqlDataSource CreateDataSource(string connectionString, string shardId)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString) { Name = shardId };
        builder.ConnectionStringBuilder.ApplicationName ??= "geo-replicator";
        builder.ConnectionStringBuilder.Timeout = Math.Min(builder.ConnectionStringBuilder.Timeout, 5);
        builder.ConnectionStringBuilder.CommandTimeout = Math.Min(builder.ConnectionStringBuilder.CommandTimeout, 30);
        return builder.Build();
    }

    [LoggerMessage(EventId = EventIds.Migrated, Level = LogLevel.Information, Message = "Shard {ShardId} migrated ({Applied} new migrations)")]
    private static partial void LogMigrated(ILogger logger, string shardId, int applied);

    [LoggerMessage(EventId = EventIds.MigrationRetry, Level = LogLevel.Warning, Message = "Shard migration failed ({Reason}); retrying in {DelayMs} ms")]
    private static partial void LogMigrationRetry(ILogger logger, string reason, double delayMs);
}
