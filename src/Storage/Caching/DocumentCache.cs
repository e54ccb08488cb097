using System.Diagnostics;
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
public sealed class DocumentCache : IAsyncDisposable
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
        redis.call('SADD', KEYS[2], KEYS[1])
        if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then
          redis.call('PEXPIRE', KEYS[2], ARGV[4])
        end
        return 1
        """;

    // Erasure: every key the user's set names, then the set (one slot: the keys share the user's hash tag).
    private const string ForgetUserScript = """
        local keys = redis.call('SMEMBERS', KEYS[1])
        for i = 1, #keys, 500 do
          redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys)))
        end
        redis.call('DEL', KEYS[1])
        return #keys
        """;

    private const string NoVersion = "0000000000000000-";

    private static readonly Meter Meter = new("Geo.Storage.Cache");
    private static readonly Counter<long> Lookups = Meter.CreateCounter<long>("geo.cache.lookups", description: "Document cache lookups by result (hit, miss, error).");
    private static readonly Histogram<double> Operations = Meter.CreateHistogram<double>("geo.cache.operation.duration", unit: "s",
        description: "Redis commands of the document cache by operation (get, set, forget-user) and outcome (ok, error, unavailable).",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] });

    private readonly Lazy<Task<ConnectionMultiplexer?>> _connection;
    private readonly ResiliencePipeline _pipeline;
    private readonly TimeSpan _ttl;
    private readonly ILogger _logger;

    /// <param name="configuration">StackExchange.Redis configuration, e.g. <c>127.0.0.1:6380,defaultDatabase=2</c>. Its
    /// <c>connectTimeout</c>, <c>syncTimeout</c> and <c>asyncTimeout</c> default to 1,000, 500 and 500 ms here.</param>
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
        var value = await TryAsync("get", async db => (string?)await db.StringGetAsync(Key(userId, collection, key)), ct);
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

    /// <summary>
    /// Drops every cached document of a user (erasure): each entry's key is also recorded in the user's key set (same
    /// hash tag, expiring no earlier than its members), so this touches only the user's keys, never the keyspace.
    /// Best effort: entries also expire by TTL.
    /// </summary>
    public Task ForgetUserAsync(string userId, CancellationToken ct)
        => TryAsync<object?>("forget-user", async db =>
        {
            await db.ScriptEvaluateAsync(ForgetUserScript, [UserKeys(userId)]);
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
        => TryAsync<object?>("set", async db =>
        {
            await db.ScriptEvaluateAsync(SetIfNewerScript, [Key(userId, collection, key), UserKeys(userId)],
                [version, kind, body, (long)_ttl.TotalMilliseconds]);
            return null;
        }, ct);

    private async Task<T?> TryAsync<T>(string operation, Func<IDatabase, Task<T>> action, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var connection = await _connection.Value;
            if (connection is null || !connection.IsConnected)
            {
                Record(operation, "unavailable", started);
                return default;
            }

            var db = connection.GetDatabase();
            var result = await _pipeline.ExecuteAsync(async _ => await action(db), ct);
            Record(operation, "ok", started);
            return result;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Record(operation, "error", started);
            Lookups.Add(1, new KeyValuePair<string, object?>("result", "error"));
            _logger.CacheUnavailable(ex.GetType().Name, ex.Message);
            return default;
        }
    }

    private static void Record(string operation, string outcome, long started) =>
        Operations.Record(Stopwatch.GetElapsedTime(started).TotalSeconds,
            new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("outcome", outcome));

    private async Task<ConnectionMultiplexer?> ConnectAsync(string configuration, Action<IConnectionMultiplexer>? connected)
    {
        var options = ConfigurationOptions.Parse(configuration);
        options.AbortOnConnectFail = false;
        // Short unless the configuration sets them: a slow cache is worse than none.
        var given = configuration.Split(',').Select(o => o.Split('=')[0].Trim()).ToHashSet(StringComparer.OrdinalIgnoreCase);
        options.ConnectTimeout = given.Contains("connectTimeout") ? options.ConnectTimeout : 1000;
        options.SyncTimeout = given.Contains("syncTimeout") ? options.SyncTimeout : 500;
        options.AsyncTimeout = given.Contains("asyncTimeout") ? options.AsyncTimeout : 500;
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
            _logger.CacheUnavailable(ex.GetType().Name, ex.Message);
            return null;
        }
    }

    // The user id in braces is the Redis hash tag: a user's entries and key set live in one slot.
    private static string Key(string userId, string collection, string key) => $"geo:d:{{{userId}}}:{collection}:{key}";

    private static string UserKeys(string userId) => $"geo:u:{{{userId}}}";

    private static string VersionText(DataVersion version) => version.ToETag().Trim('"');
}
