using Geo.Cli.CommandLine;
using Geo.Contracts;
using Geo.Contracts.Directory;
using Geo.Core.Clock;
using Geo.Core.Tls;
using Geo.Core.Topology;
using Geo.Storage;
using Geo.Storage.Moves;
using Grpc.Core;
using Grpc.Net.Client;
using Npgsql;

namespace Geo.Cli.Shards;

/// <summary>What shard commands use of one region: one data source and <see cref="ShardStore"/> per shard, and its directory.</summary>
internal sealed class RegionConnection : IAsyncDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    private readonly Dictionary<string, NpgsqlDataSource> _dataSources;
    private readonly Dictionary<string, ShardStore> _stores;
    private readonly GrpcChannel _channel;

    /// <summary>The clock of this connection's timestamps, call deadlines and the mover's HLC.</summary>
    public TimeProvider Time { get; } = TimeProvider.System;

    private RegionConnection(RegionInfo region, TlsCredentials admin)
    {
        Region = region;
        // The mover replays changes that the region already accepted: its clock must never quarantine them.
        var clock = new HybridLogicalClock(Time, TimeSpan.FromDays(3650));
        _dataSources = region.Shards.ToDictionary(s => s.Key, s => CreateDataSource(s.Key, s.Value), StringComparer.Ordinal);
        _stores = _dataSources.ToDictionary(s => s.Key, s => new ShardStore(s.Key, region.Id, s.Value, clock), StringComparer.Ordinal);
        _channel = DirectoryClient.CreateChannel(region.Directory, admin.ClientOptions(), UnreachedRetry.ConnectTimeout);
        Directory = new Contracts.Directory.Directory.DirectoryClient(_channel);
    }

    public RegionInfo Region { get; }

    public string Id => Region.Id;

    public Contracts.Directory.Directory.DirectoryClient Directory { get; }

    public IReadOnlyDictionary<string, NpgsqlDataSource> DataSources => _dataSources;

    public static RegionConnection Open(GeoTopology topology, string? regionId, TlsCredentials admin)
    {
        if (regionId is null)
        {
            throw GeoCliException.Usage($"--region is required; the topology has: {string.Join(", ", topology.Regions.Keys)}.");
        }

        return topology.Regions.TryGetValue(regionId, out var region)
            ? new RegionConnection(region, admin)
            : throw GeoCliException.NotFound($"--region: unknown region '{regionId}'; the topology has: {string.Join(", ", topology.Regions.Keys)}.");
    }

    public ShardStore Store(string shardId) => _stores.TryGetValue(shardId, out var store)
        ? store
        : throw GeoCliException.NotFound($"Shard '{shardId}' is not in region '{Id}' of the topology; add it with 'geoctl shards add'.");

    public NpgsqlDataSource DataSource(string shardId) => _dataSources.TryGetValue(shardId, out var dataSource)
        ? dataSource
        : throw GeoCliException.NotFound($"Shard '{shardId}' is not in region '{Id}' of the topology; add it with 'geoctl shards add'.");

    /// <summary>The durable progress of the moves whose source is <paramref name="shardId"/>.</summary>
    public MoveProgressStore Progress(string shardId) => new(DataSource(shardId));

    /// <summary>The region's current map from its directory.</summary>
    public Task<ShardMapSnapshot> MapAsync(CancellationToken ct) =>
        CallAsync(async o => ShardMapSnapshot.FromProto(await Directory.GetShardMapAsync(new GetShardMapRequest { Region = Id }, o)), ct);

    /// <summary>The move, or null when the directory does not know it.</summary>
    public async Task<MoveState?> GetMoveAsync(string moveId, CancellationToken ct)
    {
        try
        {
            return await CallAsync(async o => (await Directory.GetMoveAsync(new GetMoveRequest { MoveId = moveId }, o)).Move, ct);
        }
        catch (GeoCliException e) when (e.InnerException is RpcException { StatusCode: StatusCode.NotFound })
        {
            return null;
        }
    }

    /// <summary>
    /// Calls the directory with a deadline, again when a call never reached it (<see cref="UnreachedRetry"/>: every
    /// directory call of a move is idempotent, and a directory restarting for a few seconds should not stop a move
    /// half-way); failures become <see cref="GeoCliException"/>s with the right exit code.
    /// </summary>
    public Task<T> CallAsync<T>(Func<CallOptions, Task<T>> call, CancellationToken ct) => UnreachedRetry.RunAsync(() => CallOnceAsync(call, ct), ct);

    private async Task<T> CallOnceAsync<T>(Func<CallOptions, Task<T>> call, CancellationToken ct)
    {
        try
        {
            return await call(new CallOptions(deadline: Time.Deadline(CallTimeout), cancellationToken: ct));
        }
        catch (RpcException e) when (GeoCliException.IsTlsRefusal(e))
        {
            throw GeoCliException.Refused($"The TLS handshake with the directory of {Id} failed: {e.Status.Detail} Use the admin certificate and CA of this deployment (--pki).");
        }
        catch (RpcException e) when (GeoCliException.IsUnreachable(e))
        {
            throw new GeoCliException(ExitCodes.Unavailable, $"The directory of {Id} at {Region.Directory} did not answer: {e.Status.DebugException?.GetBaseException().Message ?? e.Status.Detail}", e);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unauthenticated or StatusCode.PermissionDenied)
        {
            throw GeoCliException.Refused($"The directory of {Id} refused geoctl's certificate: {e.Status.Detail} Use the admin certificate of this deployment's CA (--pki).");
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound)
        {
            throw new GeoCliException(ExitCodes.NotFound, $"Directory of {Id}: {e.Status.Detail}", e);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.FailedPrecondition or StatusCode.InvalidArgument or StatusCode.AlreadyExists)
        {
            throw new GeoCliException(ExitCodes.Failed, $"Directory of {Id} refused: {e.Status.Detail}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var dataSource in _dataSources.Values)
        {
            await dataSource.DisposeAsync();
        }

        _channel.Dispose();
    }

    // No command timeout: copies of large buckets take as long as they take.
    private static NpgsqlDataSource CreateDataSource(string shardId, string connectionString) => ShardDataSource.Create(connectionString, shardId, "geoctl", commandTimeoutSeconds: 0, connectTimeoutSeconds: 15);
}
