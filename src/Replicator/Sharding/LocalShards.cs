using System.Collections.Concurrent;
using Geo.Core.Clock;
using Geo.Replicator.Hosting;
using Geo.ServiceDefaults.Topology;
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
    private readonly ConcurrentDictionary<string, NpgsqlDataSource> _dataSources = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ShardStore> _stores = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _migrated = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _adding = new();
    private readonly TopologyFile _topologyFile;
    private readonly HybridLogicalClock _clock;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger<LocalShards> _logger;
    private readonly string _checkpointShardId;

    public LocalShards(TopologyFile topology, IOptions<GeoSiteOptions> site, HybridLogicalClock clock, TimeProvider time, ILoggerFactory loggers)
    {
        (_topologyFile, _clock, _time, _loggers) = (topology, clock, time, loggers);
        _logger = loggers.CreateLogger<LocalShards>();
        var region = topology.Topology.Region(site.Value.Region);
        RegionId = region.Id;
        foreach (var (shardId, connectionString) in region.Shards)
        {
            Open(shardId, connectionString);
        }

        // Fixed at start: a shard added later must not move the directory stream's checkpoints elsewhere.
        _checkpointShardId = Ids[0];
    }

    public string RegionId { get; }

    /// <summary>Shard ids, sorted; grows when a shard added with <c>geoctl shards add</c> appears in the map.</summary>
    public IReadOnlyList<string> Ids => [.. _stores.Keys.Order(StringComparer.Ordinal)];

    public IReadOnlyDictionary<string, ShardStore> Stores => _stores;

    /// <summary>The shard that also keeps this region's directory-stream checkpoints (the first by id at start).</summary>
    public ShardStore CheckpointStore => _stores[_checkpointShardId];

    public bool IsMigrated => _migrated.Task.IsCompletedSuccessfully;

    public Task WhenMigrated(CancellationToken ct) => _migrated.Task.WaitAsync(ct);

    /// <summary>
    /// The store of <paramref name="shardId"/>. A shard added since start-up (the map names it) is opened from the
    /// topology file, which <c>geoctl shards add</c> wrote after migrating the shard; an unknown one is an error naming the fix.
    /// </summary>
    public ShardStore Store(string shardId)
        => _stores.TryGetValue(shardId, out var store) ? store : AddFromTopology(shardId);

    /// <summary>Opens every shard of <paramref name="shardIds"/> not open yet and migrates it; returns the ones it added.</summary>
    public async Task<IReadOnlyList<string>> AddAsync(IEnumerable<string> shardIds, CancellationToken ct)
    {
        var added = new List<string>();
        foreach (var shardId in shardIds.Where(id => !_stores.ContainsKey(id)))
        {
            AddFromTopology(shardId);
            await ShardMigrator.MigrateAsync(_dataSources[shardId], ct);
            LogShardAdded(_logger, shardId);
            added.Add(shardId);
        }

        return added;
    }

    private ShardStore AddFromTopology(string shardId)
    {
        lock (_adding)
        {
            if (_stores.TryGetValue(shardId, out var existing))
            {
                return existing;
            }

            var region = _topologyFile.Reload().Region(RegionId);
            return region.Shards.TryGetValue(shardId, out var connectionString)
                ? Open(shardId, connectionString)
                : throw new InvalidOperationException(
                    $"The shard map names shard '{shardId}', which is not in this region's topology ({_topologyFile.Path}); add it with 'geoctl shards add'.");
        }
    }

    private ShardStore Open(string shardId, string connectionString)
    {
        var dataSource = CreateDataSource(connectionString, shardId);
        _dataSources[shardId] = dataSource;
        var store = new ShardStore(shardId, RegionId, dataSource, _clock, _time, _loggers.CreateLogger<ShardStore>());
        _stores[shardId] = store;
        return store;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (await ShardMigrationLoop.RunAsync(() => _dataSources, (shardId, applied) => LogMigrated(_logger, shardId, applied),
                (ex, delay) => LogMigrationRetry(_logger, ex.Message, delay.TotalMilliseconds), stoppingToken))
        {
            _migrated.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var dataSource in _dataSources.Values)
        {
            await dataSource.DisposeAsync();
        }
    }

    private static NpgsqlDataSource CreateDataSource(string connectionString, string shardId) => ShardDataSource.Create(connectionString, shardId, "geo-replicator", commandTimeoutSeconds: 30);

    [LoggerMessage(EventId = EventIds.Migrated, Level = LogLevel.Information, Message = "Shard {ShardId} migrated ({Applied} new migrations)")]
    private static partial void LogMigrated(ILogger logger, string shardId, int applied);

    [LoggerMessage(EventId = EventIds.ShardAdded, Level = LogLevel.Information, Message = "Shard {ShardId} added since start-up: opened from the topology file and migrated")]
    private static partial void LogShardAdded(ILogger logger, string shardId);

    [LoggerMessage(EventId = EventIds.MigrationRetry, Level = LogLevel.Warning, Message = "Shard migration failed ({Reason}); retrying in {DelayMs} ms")]
    private static partial void LogMigrationRetry(ILogger logger, string reason, double delayMs);
}
