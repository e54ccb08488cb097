using Geo.Contracts.Directory;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.ServiceDefaults.Topology;
using Geo.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Geo.RegionService.Sharding;

/// <summary>Where the current shard map comes from (the directory's watch stream in production).</summary>
internal interface IShardMapSource
{
    /// <summary>The newest map seen, or null before the first one arrived.</summary>
    ShardMapSnapshot? Current { get; }

    /// <summary>Waits until a map with an epoch above <paramref name="epoch"/> arrives, or the timeout passes; returns the newest map.</summary>
    Task<ShardMapSnapshot?> WaitForNewerAsync(long epoch, TimeSpan timeout, CancellationToken ct);
}

/// <summary>Resolves a user to the <see cref="ShardStore"/> of the shard that owns the user's bucket in this region.</summary>
/// <remarks>
/// A shard that appears in a map but was not in the topology at start (added with <c>geoctl shards add</c>) is picked
/// up from the topology file on first use, so the service needs no restart for a new shard.
/// </remarks>
internal sealed class ShardRouter : IAsyncDisposable
{
    private readonly Dictionary<string, NpgsqlDataSource> _dataSources;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ShardStore> _stores;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, NpgsqlDataSource> _addedDataSources = new(StringComparer.Ordinal);
    private readonly Lock _addLock = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task> _warming = new(StringComparer.Ordinal);
    private readonly IShardMapSource _maps;
    private readonly RegionServiceOptions _options;
    private readonly TopologyFile _topologyFile;
    private readonly TimeProvider _time;
    private readonly HybridLogicalClock _clock;
    private readonly ILoggerFactory _loggers;

    public ShardRouter(TopologyFile topology, IShardMapSource maps, HybridLogicalClock clock, TimeProvider time,
        IOptions<RegionServiceOptions> options, ILoggerFactory loggers)
    {
        _topologyFile = topology;
        _maps = maps;
        _time = time;
        _options = options.Value;
        _clock = clock;
        _loggers = loggers;
        var region = topology.Topology.Region(_options.Region);
        _dataSources = region.Shards.ToDictionary(s => s.Key, s => CreateDataSource(s.Value, s.Key), StringComparer.Ordinal);
        _stores = new(_dataSources.ToDictionary(
            s => s.Key,
            s => new ShardStore(s.Key, region.Id, s.Value, clock, time, loggers.CreateLogger<ShardStore>()),
            StringComparer.Ordinal), StringComparer.Ordinal);
    }

    /// <summary>Every local shard's data source, by shard id (migrations, health).</summary>
    public IReadOnlyDictionary<string, NpgsqlDataSource> DataSources => _dataSources;

    /// <summary>The store owning <paramref name="userId"/> for reads; null before a shard map is known.</summary>
    public ShardStore? ForRead(string userId)
        => _maps.Current is { } snapshot ? Store(snapshot.Map.ShardOfUser(userId)) : null;

    /// <summary>
    /// The store owning <paramref name="userId"/> for writes. While the user's bucket is fenced by a move, waits up
    /// to <see cref="RegionServiceOptions.FenceWait"/> for the flip, then routes to the new owner; null if still fenced.
    /// </summary>
    public async Task<WriteRoute> ForWriteAsync(string userId, CancellationToken ct)
    {
        var snapshot = _maps.Current;
        if (snapshot is null)
        {
            return new WriteRoute(null, WriteRouteFailure.NoMap, 0);
        }

        WarmMoveTargets(snapshot);
        var bucket = Buckets.Of(userId);
        var deadline = _time.GetUtcNow() + _options.FenceWait;
        while (snapshot.FencedBuckets.Contains(bucket))
        {
            var left = deadline - _time.GetUtcNow();
            if (left <= TimeSpan.Zero)
            {
                return new WriteRoute(null, WriteRouteFailure.Fenced, snapshot.Epoch);
            }

            snapshot = await _maps.WaitForNewerAsync(snapshot.Map.Epoch, left, ct) ?? snapshot;
        }

        return new WriteRoute(Store(snapshot.Map.ShardOf(bucket)), WriteRouteFailure.None, snapshot.Epoch);
    }

    /// <summary>
    /// After a shard refused a write because a move fenced its bucket: waits up to <see cref="RegionServiceOptions.FenceWait"/>
    /// for a map newer than <paramref name="epoch"/> (the one the write was routed with); true when one arrived.
    /// </summary>
    public async Task<bool> WaitForNewerMapAsync(long epoch, CancellationToken ct)
        => await _maps.WaitForNewerAsync(epoch, _options.FenceWait, ct) is { } map && map.Epoch > epoch;

    public async ValueTask DisposeAsync()
    {
        foreach (var dataSource in _dataSources.Values.Concat(_addedDataSources.Values))
        {
            await dataSource.DisposeAsync();
        }
    }

    // Connections to warm on a move's target before its flip: the writes that waited out the fence all go there at once,
    // and opening that many connections then would add to the pause.
    private const int WarmConnections = 16;

    /// <summary>Opens connections to the targets of moves in flight once each, in the background, so the flip finds a warm pool.</summary>
    private void WarmMoveTargets(ShardMapSnapshot snapshot)
    {
        foreach (var move in snapshot.Moves)
        {
            if (!_warming.ContainsKey(move.TargetShard))
            {
                _warming.GetOrAdd(move.TargetShard, shard => Task.Run(() => WarmAsync(shard)));
            }
        }
    }

    private async Task WarmAsync(string shardId)
    {
        var connections = new List<NpgsqlConnection>();
        try
        {
            _ = Store(shardId); // a shard added since start-up gets its data source here
            var source = _dataSources.TryGetValue(shardId, out var known) ? known : _addedDataSources[shardId];
            for (var i = 0; i < WarmConnections; i++)
            {
                connections.Add(await source.OpenConnectionAsync());
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            _warming.TryRemove(shardId, out _); // try again on a later map; writes open their own connections meanwhile
        }
        finally
        {
            foreach (var connection in connections)
            {
                await connection.DisposeAsync(); // back to the pool, open
            }
        }
    }

    private ShardStore Store(string shardId)
        => _stores.TryGetValue(shardId, out var store) ? store : AddFromTopology(shardId);

    // A shard added since start-up: read the topology file again (rare: once per new shard per process).
    private ShardStore AddFromTopology(string shardId)
    {
        lock (_addLock)
        {
            if (_stores.TryGetValue(shardId, out var existing))
            {
                return existing;
            }

            var region = _topologyFile.Reload().Region(_options.Region);
            if (!region.Shards.TryGetValue(shardId, out var connectionString))
            {
                throw new InvalidOperationException($"The shard map names shard '{shardId}', which is not in this region's topology ({_options.Topology}); add it with 'geoctl shards add'.");
            }

            var dataSource = CreateDataSource(connectionString, shardId);
            _addedDataSources[shardId] = dataSource;
            var store = new ShardStore(shardId, region.Id, dataSource, _clock, _time, _loggers.CreateLogger<ShardStore>());
            _stores[shardId] = store;
            return store;
        }
    }

    private static NpgsqlDataSource CreateDataSource(string connectionString, string shardId) => ShardDataSource.Create(connectionString, shardId, "geo-region-service", commandTimeoutSeconds: 10);
}

internal enum WriteRouteFailure
{
    None,
    NoMap,
    Fenced,
}

/// <summary>Where a write goes; <paramref name="Epoch"/> is the map epoch it was routed with.</summary>
internal readonly record struct WriteRoute(ShardStore? Store, WriteRouteFailure Failure, long Epoch);
