using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Geo.Contracts.Directory;
using Geo.ShardDirectory.Hosting;
using Microsoft.Extensions.Options;

namespace Geo.ShardDirectory.Users;

/// <summary>
/// In-process cache of live entries for GetUser. Entries expire after <see cref="DirectoryOptions.UserCacheTtl"/>;
/// local changes and NOTIFYs from other directory processes evict them at once.
/// </summary>
internal sealed class UserCache
{
    public const string MeterName = "Geo.ShardDirectory";

    private readonly ConcurrentDictionary<string, (UserEntry Entry, long ExpiresAt)> _entries = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly long _ttlTicks;
    private readonly int _capacity;
    private readonly Counter<long> _lookups;
    private long _hits;
    private long _misses;
    private long _generation;

    public UserCache(IOptions<DirectoryOptions> options, TimeProvider time, IMeterFactory meters)
    {
        _time = time;
        _ttlTicks = (long)(options.Value.UserCacheTtl.TotalSeconds * time.TimestampFrequency);
        _capacity = options.Value.UserCacheCapacity;
        var meter = meters.Create(MeterName);
        _lookups = meter.CreateCounter<long>("geo.directory.user_cache.lookups", "{lookup}", "GetUser cache lookups by result (hit, miss).");
        meter.CreateObservableGauge("geo.directory.user_cache.hit_ratio", HitRatio, description: "Share of GetUser lookups served from the in-process cache since start.");
        meter.CreateObservableUpDownCounter("geo.directory.user_cache.entries", () => _entries.Count, "{entry}", "Entries in the GetUser cache.");
    }

    /// <summary>Hits / lookups since start; 0 before the first lookup.</summary>
    public double HitRatio()
    {
        var hits = Interlocked.Read(ref _hits);
        var total = hits + Interlocked.Read(ref _misses);
        return total == 0 ? 0 : (double)hits / total;
    }

    public bool TryGet(string userId, out UserEntry entry)
    {
        if (_entries.TryGetValue(userId, out var cached) && cached.ExpiresAt > _time.GetTimestamp())
        {
            Interlocked.Increment(ref _hits);
            _lookups.Add(1, new KeyValuePair<string, object?>("result", "hit"));
            entry = cached.Entry;
            return true;
        }

        Interlocked.Increment(ref _misses);
        _lookups.Add(1, new KeyValuePair<string, object?>("result", "miss"));
        entry = null!;
        return false;
    }

    /// <summary>Grows on every eviction; read it before a database read and pass it to <see cref="Set"/>.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>
    /// Caches a live entry read when the cache was at <paramref name="readAtGeneration"/>; skipped when anything was
    /// evicted since, so a read that raced an erase cannot put the old entry back.
    /// </summary>
    public void Set(UserEntry entry, long readAtGeneration)
    {
        if (entry.Deleted)
        {
            Invalidate(entry.UserId);
            return;
        }

        if (Generation != readAtGeneration)
        {
            return;
        }

        if (_entries.Count >= _capacity)
        {
            // Crude but bounded: drop everything rather than track recency on the hot path.
            _entries.Clear();
        }

        _entries[entry.UserId] = (entry, _time.GetTimestamp() + _ttlTicks);
    }

    public void Invalidate(string userId)
    {
        Interlocked.Increment(ref _generation);
        _entries.TryRemove(userId, out _);
        Changed.Pulse();
    }

    /// <summary>
    /// Pulsed whenever an entry changed (every invalidation: this process's writes and every other process's NOTIFY)
    /// and after the listener reconnected; WatchUserChanges streams it to the region's replicator.
    /// </summary>
    public Core.Signals.ChangeSignal Changed { get; } = new();

    /// <summary>Evicts everything, e.g. after missing notifications while disconnected.</summary>
    public void Clear()
    {
        Interlocked.Increment(ref _generation);
        _entries.Clear();
        Changed.Pulse();
    }
}
