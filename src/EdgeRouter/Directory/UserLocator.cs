using Geo.Contracts.Directory;
using Geo.Core.Topology;
using Geo.ServiceDefaults.Resilience;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Registry;
using Polly.Timeout;

namespace Geo.EdgeRouter.Directory;

/// <summary>
/// User id → residency and home region. Asks the edge region's ShardDirectory (through <see cref="DirectoryClient"/>'s
/// cache and the shared gRPC pipeline); a miss, or a local directory that is down, asks every peer region's directory in
/// parallel, bounded by <see cref="EdgeOptions.PeerLookupTimeout"/>: a fresh id may not have replicated here yet.
/// A miss is reported only when every directory answered "not found"; a peer that failed or did not answer in time
/// may be the one that registered the id a moment ago (the region that creates a user writes its own directory
/// first, and the others learn of it through replication), so the outcome is then <see cref="UserLookup.Unavailable"/>
/// (503 with Retry-After), never a 404 for a user who exists.
/// </summary>
internal sealed partial class UserLocator : IAsyncDisposable
{
    private readonly string _region;
    private readonly Dictionary<string, (GrpcChannel Channel, DirectoryClient Client)> _directories;
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeSpan _peerTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger<UserLocator> _logger;
    private long _lastLocalSuccess;
    private bool _warm;

    public UserLocator(GeoTopology topology, IOptions<EdgeSiteOptions> site, IOptions<EdgeOptions> options,
        ResiliencePipelineProvider<string> pipelines, Core.Tls.TlsCredentials tls, TimeProvider time, ILogger<UserLocator> logger)
    {
        _region = site.Value.Region;
        _directories = topology.Regions.Values.ToDictionary(
            r => r.Id,
            r =>
            {
                var channel = DirectoryClient.CreateChannel(r.Directory, tls.ClientOptions());
                return (channel, new DirectoryClient(new Contracts.Directory.Directory.DirectoryClient(channel), time: time));
            },
            StringComparer.Ordinal);
        _pipeline = pipelines.GetPipeline(GeoPipelines.Grpc);
        _peerTimeout = options.Value.PeerLookupTimeout;
        _time = time;
        _logger = logger;
    }

    /// <summary>True once <see cref="WarmUpAsync"/> ended: every directory's connection was tried once (for readiness).</summary>
    public bool IsWarm => Volatile.Read(ref _warm);

    /// <summary>
    /// Opens the connection to every region's directory, each until it is up or has failed once (refused, reset, TLS
    /// refusal), at most <paramref name="bound"/> in all. A peer lookup is bounded by
    /// <see cref="EdgeOptions.PeerLookupTimeout"/> (1 s): on a busy host the first TCP and TLS handshake to a peer's
    /// directory alone took longer, and the first request for a user of that peer answered 503.
    /// </summary>
    public async Task WarmUpAsync(TimeSpan bound, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(bound);
        await Task.WhenAll(_directories.Values.Select(async d =>
        {
            var connecting = d.Channel.ConnectAsync(limit.Token);
            try
            {
                for (var state = d.Channel.State; state is not (ConnectivityState.Ready or ConnectivityState.TransientFailure or ConnectivityState.Shutdown); state = d.Channel.State)
                {
                    await d.Channel.WaitForStateChangedAsync(state, limit.Token);
                }
            }
            catch (OperationCanceledException)
            {
                // Bounded: a directory that neither answers nor refuses is left to the lookups' own timeouts.
            }

            await connecting.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }));
        Volatile.Write(ref _warm, true);
    }

    /// <summary>When the local directory last answered (found or not found), for readiness.</summary>
    public DateTimeOffset? LastLocalSuccess => Interlocked.Read(ref _lastLocalSuccess) is var ticks and > 0 ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    /// <summary>The local directory's client (readiness probes).</summary>
    public DirectoryClient Local => _directories[_region].Client;

    public async Task<UserLookup> FindAsync(string userId, CancellationToken ct)
    {
        var localFailed = false;
        try
        {
            var entry = await _pipeline.ExecuteAsync(async c => await Local.GetUserAsync(userId, c), ct);
            Interlocked.Exchange(ref _lastLocalSuccess, _time.GetUtcNow().UtcTicks);
            if (entry is not null)
            {
                return UserLookup.Found(entry, _region);
            }
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.InvalidArgument)
        {
            // Not a well-formed user id: no directory can know it.
            return UserLookup.NotFound;
        }
        catch (Exception ex) when (IsUnavailable(ex) && !ct.IsCancellationRequested)
        {
            localFailed = true;
            LogLocalDirectoryFailed(_logger, _region, ex.Message);
        }

        var (peerEntry, peerRegion, peersFailed) = await AskPeersAsync(userId, ct);
        if (peerEntry is not null)
        {
            LogFoundAtPeer(_logger, peerRegion!);
            return UserLookup.Found(peerEntry, peerRegion!);
        }

        return localFailed || peersFailed > 0 ? UserLookup.Unavailable : UserLookup.NotFound;
    }

    /// <summary>The entry of the first peer that knows the user, and how many peers failed or did not answer in time.</summary>
    private async Task<(UserEntry? Entry, string? Region, int Failed)> AskPeersAsync(string userId, CancellationToken ct)
    {
        var peers = _directories.Where(d => d.Key != _region).ToArray();
        if (peers.Length == 0)
        {
            return (null, null, 0);
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(_peerTimeout);
        var pending = peers.Select(p => AskAsync(p.Key, p.Value.Client)).ToList();
        var failures = 0;
        try
        {
            while (pending.Count > 0)
            {
                var done = await Task.WhenAny(pending);
                pending.Remove(done);
                var (entry, region, failed) = await done;
                if (entry is not null)
                {
                    return (entry, region, 0);
                }

                failures += failed ? 1 : 0;
            }
        }
        finally
        {
            await limit.CancelAsync();
        }

        return (null, null, failures);

        async Task<(UserEntry?, string, bool)> AskAsync(string region, DirectoryClient client)
        {
            try
            {
                return (await client.GetUserAsync(userId, limit.Token), region, false);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.InvalidArgument)
            {
                return (null, region, false);
            }
            catch (Exception ex) when (ex is RpcException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                return (null, region, true);
            }
        }
    }

    private static bool IsUnavailable(Exception ex) => ex is RpcException or TimeoutRejectedException or BrokenCircuitException;

    public async ValueTask DisposeAsync()
    {
        foreach (var (channel, _) in _directories.Values)
        {
            await channel.ShutdownAsync();
            channel.Dispose();
        }
    }

    [LoggerMessage(EventId = EventIds.LocalDirectoryFailed, Level = LogLevel.Warning, Message = "Directory of {RegionId} failed; asking peers: {Reason}")]
    private static partial void LogLocalDirectoryFailed(ILogger logger, string regionId, string reason);

    [LoggerMessage(EventId = EventIds.FoundAtPeer, Level = LogLevel.Debug, Message = "A user was found in the directory of {RegionId}")]
    private static partial void LogFoundAtPeer(ILogger logger, string regionId);
}

/// <summary>Outcome of a lookup: the entry, or not found (every directory said so), or not known (some did not answer).</summary>
internal sealed record UserLookup(UserEntry? Entry, string? Source, bool DirectoryUnavailable)
{
    public static readonly UserLookup NotFound = new(null, null, false);
    public static readonly UserLookup Unavailable = new(null, null, true);

    public static UserLookup Found(UserEntry entry, string source) => new(entry, source, false);
}
