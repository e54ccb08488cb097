using System.Collections.Concurrent;
using System.Net.Security;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Geo.Contracts.Directory;

/// <summary>
/// What other services need from a region's ShardDirectory: user lookups through an in-process cache, user
/// registration and erasure, and the shard map (once, or followed with <see cref="FollowShardMap"/>). Every call has a
/// deadline. Thread-safe; create one per directory address and share it.
/// </summary>
public sealed class DirectoryClient
{
    private readonly ConcurrentDictionary<string, (UserEntry? Entry, long ExpiresAt)> _users = new(StringComparer.Ordinal);
    private readonly DirectoryClientOptions _options;
    private readonly TimeProvider _time;

    /// <param name="client">The generated client, e.g. from <see cref="CreateChannel"/> or the gRPC client factory.</param>
    /// <param name="options">Deadlines and cache lifetimes; defaults when null.</param>
    /// <param name="time">Clock for cache expiry; <see cref="TimeProvider.System"/> when null.</param>
    public DirectoryClient(Directory.DirectoryClient client, DirectoryClientOptions? options = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        Grpc = client;
        _options = options ?? new DirectoryClientOptions();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The generated client, for calls this wrapper does not cover (replication, moves).</summary>
    public Directory.DirectoryClient Grpc { get; }

    /// <summary>
    /// A channel suited to a directory: keep-alive pings so a dead connection is noticed while a watch stream is quiet,
    /// and several connections when streams pile up. <paramref name="tls"/> is the client side of mutual TLS for
    /// <c>https://</c> addresses (e.g. <c>TlsCredentials.ClientOptions()</c>: the caller's certificate and the CA).
    /// <paramref name="connectTimeout"/> bounds TCP connect plus TLS handshake (3 s by default, for long-lived services
    /// that notice a dead directory quickly and retry in their own loops); a short-lived process such as geoctl pays
    /// its cold start (JIT, the TLS stack, the first chain build) inside that window and needs more.
    /// </summary>
    public static GrpcChannel CreateChannel(Uri address, SslClientAuthenticationOptions? tls = null, TimeSpan? connectTimeout = null) => GrpcChannel.ForAddress(address, new GrpcChannelOptions
    {
        // The default backoff grows to 2 minutes while the directory is away, and calls fail fast during it;
        // a restarted directory must be usable within seconds.
        InitialReconnectBackoff = TimeSpan.FromMilliseconds(200),
        MaxReconnectBackoff = TimeSpan.FromSeconds(2),
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = connectTimeout ?? TimeSpan.FromSeconds(3),
            KeepAlivePingDelay = TimeSpan.FromSeconds(10),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            SslOptions = tls ?? new SslClientAuthenticationOptions(),
        },
    });

    /// <summary>The user's entry, or null when the directory does not know them (or they were erased).</summary>
    /// <remarks>Found entries are cached for <see cref="DirectoryClientOptions.UserCacheTtl"/>, misses for <see cref="DirectoryClientOptions.NegativeCacheTtl"/>;
    /// an expired found entry is still served while the directory is unavailable (<see cref="DirectoryClientOptions.StaleIfUnavailable"/>).</remarks>
    /// <exception cref="RpcException">The directory failed or did not answer within the deadline.</exception>
    public async Task<UserEntry?> GetUserAsync(string userId, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        if (_users.TryGetValue(userId, out var cached) && cached.ExpiresAt > _time.GetTimestamp())
        {
            return cached.Entry;
        }

        UserEntry? entry;
        try
        {
            entry = await Grpc.GetUserAsync(new GetUserRequest { UserId = userId }, Call(ct));
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            entry = null;
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded
            && cached.Entry is { } stale && cached.ExpiresAt + (long)(_options.StaleIfUnavailable.TotalSeconds * _time.TimestampFrequency) > _time.GetTimestamp())
        {
            // The directory is away (restarting, partitioned): a known user's entry changes only on erase, so the last
            // one is a better answer than none. Kept as it was; the next successful lookup refreshes it.
            return stale;
        }

        Remember(userId, entry);
        return entry;
    }

    /// <summary>Registers a user whose UUIDv7 <paramref name="userId"/> the caller generated; idempotent for the same payload.</summary>
    /// <exception cref="RpcException">INVALID_ARGUMENT, FAILED_PRECONDITION (home region not allowed), ALREADY_EXISTS (id taken), or a transport failure.</exception>
    public Task<UserEntry> CreateUserAsync(string userId, string residency, string homeRegion, CancellationToken ct = default)
        => CreateUserAsync(new CreateUserRequest { UserId = userId, Residency = residency, HomeRegion = homeRegion }, ct);

    /// <summary>Registers a user, optionally under an idempotency key (see <see cref="CreateUserRequest.IdempotencyKey"/>).</summary>
    /// <exception cref="RpcException">As the other overload; FAILED_PRECONDITION "idempotency-key-reused" (<see cref="DirectoryErrors.IsIdempotencyKeyReused"/>).</exception>
    public async Task<UserEntry> CreateUserAsync(CreateUserRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var entry = await Grpc.CreateUserAsync(request, Call(ct));
        Remember(entry.UserId, entry);
        return entry;
    }

    /// <summary>Tombstones the user's entry; returns the tombstone. NOT_FOUND as an <see cref="RpcException"/> when unknown.</summary>
    public async Task<UserEntry> EraseUserAsync(string userId, CancellationToken ct = default)
    {
        var tombstone = await Grpc.EraseUserAsync(new EraseUserRequest { UserId = userId }, Call(ct));
        Remember(userId, null);
        return tombstone;
    }

    /// <summary>Forgets the cached entry of <paramref name="userId"/>.</summary>
    public void Invalidate(string userId) => _users.TryRemove(userId, out _);

    /// <summary>The region's current shard map (<paramref name="region"/> empty: the directory's own region).</summary>
    public async Task<ShardMapSnapshot> GetShardMapAsync(string region = "", CancellationToken ct = default)
        => ShardMapSnapshot.FromProto(await Grpc.GetShardMapAsync(new GetShardMapRequest { Region = region }, Call(ct)));

    /// <summary>Starts following the region's map; dispose the follower to stop.</summary>
    public ShardMapFollower FollowShardMap(string region = "", ShardMapFollowerOptions? options = null, ILogger? logger = null)
    {
        var follower = new ShardMapFollower(Grpc, region, options, _time, logger);
        follower.Start();
        return follower;
    }

    /// <summary>Call options of one page of a sequence read on <see cref="Grpc"/> (deadline <see cref="DirectoryClientOptions.PageTimeout"/>).</summary>
    public CallOptions PageCall(CancellationToken ct) => new(deadline: _time.Deadline(_options.PageTimeout), cancellationToken: ct);

    private CallOptions Call(CancellationToken ct) => new(deadline: _time.Deadline(_options.CallTimeout), cancellationToken: ct);

    private void Remember(string userId, UserEntry? entry)
    {
        if (entry is { Deleted: true })
        {
            entry = null;
        }

        if (_users.Count >= _options.UserCacheCapacity)
        {
            _users.Clear();
        }

        var ttl = entry is null ? _options.NegativeCacheTtl : _options.UserCacheTtl;
        _users[userId] = (entry, _time.GetTimestamp() + (long)(ttl.TotalSeconds * _time.TimestampFrequency));
    }
}
