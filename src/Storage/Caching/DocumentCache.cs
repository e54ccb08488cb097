using System.Diagnostics.Metrics;
using Geo.Core.Versioning;
using Microsoft.Extensions.Logging;
using Polly;
using StackExchange.Redis;

namespace Geo.Storage.Caching;

/// <summary>What the cache knows of a document.</summary>
public enum CachedKind
{
    /// <summary>Not in the cache, or only its version is known: read Postgres.</summary>
    Miss,

    /// <summary>The live document.</summary>
    Document,

    /// <summary>Known absent (deleted or never written).</summary>
    Absent,
}

/// <summary>
/// Redis cache-aside for documents. Every entry carries the version it reflects and is only ever replaced by a
/// newer one (a Lua compare-and-set), so a slow reader can never put back a value older than a write it raced.
/// Writes store a version-only marker instead of deleting, which keeps that guarantee across invalidation.
/// Redis failing or slow degrades to Postgres reads: every call is bounded by the Redis pipeline and swallowed.
/// </summary>
public sealed partial class DocumentCache : IAsyncDisposable
{
    // Value layout: "<etag-ish version>|<kind>|<body>", version = 16 hex digits + '-' + origin (orders as text).
    private const string SetIfNewerScript = """
        local cur = redis.call('GET', KEYS[1])
        if cur then
          local sep = string.find(cur, '|', 1, true)
          local curVersion = string.sub(cur, 1, sep - 1)
          local curKind = string.sub(cur, sep + 1, sep + 1)
          if curVersion > ARGV[1] or (curVersion == ARGV[1] and (curKind ~= 'M' or ARGV[2] == 'M')) then
            return 0
          end
        end
        redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3], 'PX', ARGV[4])
        return 1
        """;

    private const string NoVersion = "0000000000000000-";

    private static readonly Meter Meter = new("Geo.RegionService.Cache");
    private static readonly Counter<long> Lookups = Meter.CreateCounter<long>("geo.cache.lookups", description: "Document cache lookups by result (hit, miss, error).");

    private readonly Lazy<Task<ConnectionMultiplexer?>> _connection;
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeSpan _ttl;
    private readonly ILogger _logger;

    /// <param name="configuration">StackExchange.Redis configuration, e.g. <c>127.0.0.1:6380,defaultDatabase=2</c>.</param>
    /// <param name="ttl">How long an entry may be served.</param>
    /// <param name="pipeline">Bounds every call (timeout, circuit breaker): the Redis pipeline of ServiceDefaults.</param>
    /// <param name="logger">Where unavailability is reported.</param>
    /// <param name="connected">Called with the connection once it is up (the services hand it to Redis tracing).</param>
    public DocumentCache(string configuration, TimeSpan ttl, ResiliencePipeline pipeline, ILogger logger, Action<IConnectionMultiplexer>? connected = null)
    {
        _ttl = ttl;
        _pipeline = pipeline;
        _logger = logger;
        _connection = new Lazy<Task<ConnectionMultiplexer?>>(() => ConnectAsync(configuration, connected));
    }

    /// <summary>True once a connection is up (readiness reports it; the service serves without it).</summary>
    public bool IsConnected => _connection.IsValueCreated && _connection.Value.IsCompletedSuccessfully && _connection.Value.Result?.IsConnected == true;

    /// <summary>What the cache holds for a document; <see cref="CachedKind.Miss"/> also when Redis is unavailable.</summary>
    public async Task<(CachedKind Kind, StoredDocument? Document)> GetAsync(string userId, string collection, string key, CancellationToken ct)
    {
        var value = await TryAsync(async db => (string?)await db.StringGetAsync(Key(userId, collection, key)), ct);
        if (value is null)
        {
            Lookups.Add(1, new KeyValuePair<string, object?>("result", "miss"));
            return (CachedKind.Miss, null);
        }

        var first = value.IndexOf('|', StringComparison.Ordinal);
        var kind = first > 0 && value.Length > first + 2 ? value[first + 1] : 'M';
        var version = value[..Math.Max(first, 0)];
        switch (kind)
        {
            case 'B' when DataVersion.TryParseETag(version, out var parsed):
                Lookups.Add(1, new KeyValuePair<string, object?>("result", "hit"));
                return (CachedKind.Document, new StoredDocument(collection, key, value[(first + 3)..], parsed.Value));
            case 'T':
                Lookups.Add(1, new KeyValuePair<string, object?>("result", "hit"));
                return (CachedKind.Absent, null);
            default:
                Lookups.Add(1, new KeyValuePair<string, object?>("result", "miss"));
                return (CachedKind.Miss, null);
        }
    }

    /// <summary>Caches what a Postgres read returned (null = absent), unless the cache already knows a newer version.</summary>
    public Task PopulateAsync(string userId, string collection, string key, StoredDocument? document, CancellationToken ct)
        => SetIfNewerAsync(userId, collection, key, document is null ? NoVersion : VersionText(document.Version), document is null ? "T" : "B", document?.Body ?? string.Empty, ct);

    /// <summary>Records that <paramref name="version"/> was written: older cached values stop being served.</summary>
    public Task InvalidateAsync(string userId, string collection, string key, DataVersion version, CancellationToken ct)
        => SetIfNewerAsync(userId, collection, key, VersionText(version), "M", string.Empty, ct);

    /// <summary>Drops every cached document of a user (erasure); best effort, entries also expire by TTL.</summary>
    public Task ForgetUserAsync(string userId, CancellationToken ct)
        => TryAsync<object?>(async _ =>
        {
            var connection = await _connection.Value;
            foreach (var endpoint in connection!.GetEndPoints())
            {
                var server = connection.GetServer(endpoint);
                var keys = new List<RedisKey>();
                await foreach (var k in server.KeysAsync(pattern: $"geo:d:{userId}:*", pageSize: 500))
                {
                    keys.Add(k);
                }

                if (keys.Count > 0)
                {
                    await connection.GetDatabase().KeyDeleteAsync([.. keys]);
                }
            }

            return null;
        }, ct);

    /// <summary>Closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_connection.IsValueCreated && await _connection.Value is { } connection)
        {
            await connection.DisposeAsync();
        }
    }

    private Task SetIfNewerAsync(string userId, string collection, string key, string version, string kind, string body, CancellationToken ct)
        => TryAsync<object?>(async db =>
        {
            await db.ScriptEvaluateAsync(SetIfNewerScript, [Key(userId, collection, key)],
                [version, kind, body, (long)_ttl.TotalMilliseconds]);
            return null;
        }, ct);

    private async Task<T?> TryAsync<T>(Func<IDatabase, Task<T>> action, CancellationToken ct)
    {
        try
        {
            var connection = await _connection.Value;
            if (connection is null || !connection.IsConnected)
            {
                return default;
            }

            var db = connection.GetDatabase();
            return await _pipeline.ExecuteAsync(async _ => await action(db), ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Lookups.Add(1, new KeyValuePair<string, object?>("result", "error"));
            LogCacheUnavailable(_logger, ex.GetType().Name, ex.Message);
            return default;
        }
    }

    private async Task<ConnectionMultiplexer?> ConnectAsync(string configuration, Action<IConnectionMultiplexer>? connected)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 1000;
        options.SyncTimeout = 500;
        options.AsyncTimeout = 500;
        options.ConnectRetry = 1;
        options.ReconnectRetryPolicy = new ExponentialRetry(250, 5000);
        try
        {
            var connection = await ConnectionMultiplexer.ConnectAsync(options);
            connected?.Invoke(connection);
            return connection;
        }
        catch (RedisConnectionException ex)
        {
            LogCacheUnavailable(_logger, ex.GetType().Name, ex.Message);
            return null;
        }
    }

    private static string Key(string userId, string collection, string key) => $"geo:d:{userId}:{collection}:{key}";

    private static string VersionText(DataVersion version) => version.ToETag().Trim('"');

    [LoggerMessage(EventId = 2101, Level = LogLevel.Warning, Message = "Redis unavailable, serving from Postgres ({ExceptionType}: {Reason})")]
    private static partial void LogCacheUnavailable(ILogger logger, string exceptionType, string reason);
}
