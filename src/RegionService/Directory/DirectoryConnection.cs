using Geo.Contracts.Directory;
using Geo.Core.Topology;
using Geo.RegionService.Sharding;
using Geo.ServiceDefaults.Resilience;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Registry;

namespace Geo.RegionService.Directory;

/// <summary>
/// The region's link to its ShardDirectory: user lookups (cached by <see cref="DirectoryClient"/>) and the shard map,
/// followed through the watch stream and kept while the directory is away, so the API keeps serving from the last map.
/// </summary>
internal sealed class DirectoryConnection : IHostedService, IUserDirectory, IShardMapSource, IAsyncDisposable
{
    private readonly GrpcChannel _channel;
    private readonly DirectoryClient _client;
    private readonly ResiliencePipeline _pipeline;
    private readonly ILogger<DirectoryConnection> _logger;
    private readonly string _region;
    private readonly CancellationTokenSource _stopping = new();
    private ShardMapFollower? _follower;
    private Task? _erasures;
    private int _disposed;

    public DirectoryConnection(GeoTopology topology, IOptions<RegionServiceOptions> options, ResiliencePipelineProvider<string> pipelines,
        Core.Tls.TlsCredentials tls, TimeProvider time, ILogger<DirectoryConnection> logger)
    {
        _region = options.Value.Region;
        _channel = DirectoryClient.CreateChannel(topology.Region(_region).Directory, tls.ClientOptions());
        _client = new DirectoryClient(new Contracts.Directory.Directory.DirectoryClient(_channel), time: time);
        _pipeline = pipelines.GetPipeline(GeoPipelines.Grpc);
        _logger = logger;
    }

    public IUserDirectory Users => this;

    public IShardMapSource ShardMaps => this;

    public ShardMapSnapshot? Current => _follower?.Current;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _follower = _client.FollowShardMap(_region, logger: _logger);
        _erasures = FollowErasuresAsync(_stopping.Token);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_erasures is not null)
        {
            await _erasures.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>
    /// Drops erased users from the lookup cache as the directory records their erase markers (this region's or
    /// replicated ones), every 250 ms, so no process of the region serves an erased user from a 60 s cache entry. The
    /// shard's own check refuses their writes regardless (ShardStore.Erasure.cs).
    /// </summary>
    private async Task FollowErasuresAsync(CancellationToken ct)
    {
        long after = -1; // from now: the cache is empty at start
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var page = await _client.Grpc.ReadErasuresAsync(new ReadErasuresRequest { AfterSeq = after, Limit = 1000 }, _client.PageCall(ct));
                foreach (var id in page.UserIds)
                {
                    _client.Invalidate(id);
                }

                after = page.NextAfterSeq;
                if (page.UserIds.Count > 0)
                {
                    continue;
                }
            }
            catch (RpcException)
            {
                // The directory is starting or away; the next round tries again.
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public async Task<UserRecord?> GetUserAsync(string userId, CancellationToken ct)
        => ToRecord(await CallAsync(c => _client.GetUserAsync(userId, c), ct));

    public async Task<(UserRecord User, bool Replayed)> CreateUserAsync(UserRecord user, CreateKey? key, CancellationToken ct)
    {
        var request = new CreateUserRequest { UserId = user.UserId, Residency = user.Residency, HomeRegion = user.HomeRegion };
        if (key is not null)
        {
            request.IdempotencyKey = key.Key;
            request.RequestHash = Google.Protobuf.ByteString.CopyFrom(key.RequestHash);
            request.KeyTtlSeconds = (long)Math.Ceiling(key.Ttl.TotalSeconds);
        }

        try
        {
            var entry = await CallAsync(c => _client.CreateUserAsync(request, c), ct);
            return (ToRecord(entry)!, entry.Replayed);
        }
        catch (RpcException ex) when (DirectoryErrors.IsIdempotencyKeyReused(ex))
        {
            throw new CreateKeyReusedException(ex.Status.Detail);
        }
    }

    public async Task<Core.Versioning.DataVersion?> EraseUserAsync(string userId, CancellationToken ct)
    {
        try
        {
            var tombstone = await CallAsync(c => _client.EraseUserAsync(userId, c), ct);
            return new Core.Versioning.DataVersion(new Core.Clock.HlcTimestamp(tombstone.Version.Hlc), tombstone.Version.Origin);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            return null; // Unknown: nothing to erase.
        }
    }

    public Task<ShardMapSnapshot?> WaitForNewerAsync(long epoch, TimeSpan timeout, CancellationToken ct)
        => _follower is { } follower ? follower.WaitForNewerAsync(epoch, timeout, ct) : Task.FromResult<ShardMapSnapshot?>(null);

    // Registered under several service types (and as a hosted service), so the container disposes it more than once.
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_follower is not null)
        {
            await _follower.DisposeAsync();
        }

        _stopping.Dispose();
        _channel.Dispose();
    }

    private static UserRecord? ToRecord(UserEntry? entry)
        => entry is null || entry.Deleted ? null : new UserRecord(entry.UserId, entry.Residency, entry.HomeRegion);

    private async Task<T> CallAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken ct)
    {
        try
        {
            return await _pipeline.ExecuteAsync(async c => await call(c), ct);
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted)
        {
            throw new DirectoryUnavailableException(ex.Status.Detail, ex);
        }
        catch (Exception ex) when (ex is Polly.Timeout.TimeoutRejectedException or Polly.CircuitBreaker.BrokenCircuitException)
        {
            throw new DirectoryUnavailableException(ex.Message, ex);
        }
    }
}
