using System.Collections.Concurrent;

namespace Geo.Replicator.Sending;

/// <summary>What this replicator knows about one peer, for status and metrics. Written by the link and the receiver.</summary>
internal sealed class PeerState(string peer, DateTimeOffset startedAt)
{
    private long _syncedAtMs = startedAt.ToUnixTimeMilliseconds();
    private long _inboundHeartbeatMs = startedAt.ToUnixTimeMilliseconds();

    public string Peer { get; } = peer;

    public volatile bool Connected;

    public volatile string LastError = string.Empty;

    /// <summary>Per stream: the highest sequence the peer acknowledged.</summary>
    public ConcurrentDictionary<string, long> Acknowledged { get; } = new(StringComparer.Ordinal);

    /// <summary>Per stream: local changes the peer has not acknowledged (refreshed periodically).</summary>
    public ConcurrentDictionary<string, long> Pending { get; } = new(StringComparer.Ordinal);

    /// <summary>The latest time T such that every local change committed before T is known to be at the peer.</summary>
    public DateTimeOffset SyncedAt => DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _syncedAtMs));

    /// <summary>When the last heartbeat from the peer arrived here.</summary>
    public DateTimeOffset InboundHeartbeatAt => DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _inboundHeartbeatMs));

    public void Synced(DateTimeOffset at) => Max(ref _syncedAtMs, at.ToUnixTimeMilliseconds());

    public void HeartbeatReceived(DateTimeOffset at) => Max(ref _inboundHeartbeatMs, at.ToUnixTimeMilliseconds());

    public double LagSeconds(DateTimeOffset now) => Math.Max(0, (now - SyncedAt).TotalSeconds);

    private static void Max(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
