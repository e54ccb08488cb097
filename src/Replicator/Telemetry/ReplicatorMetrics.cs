using System.Diagnostics.Metrics;
using Geo.Replicator.Sending;

namespace Geo.Replicator.Telemetry;

/// <summary>
/// Meter <c>Geo.Replicator</c> (exported on /metrics): lag and pending changes per peer, and counters of applied,
/// skipped, refused and quarantined changes and of conflicts. Applied/s is the rate of the applied counter.
/// </summary>
internal sealed class ReplicatorMetrics : IDisposable
{
    public const string MeterName = "Geo.Replicator";

    private readonly Meter _meter;
    private readonly Counter<long> _applied;
    private readonly Counter<long> _skipped;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _quarantined;
    private readonly Counter<long> _conflicts;
    private readonly Counter<long> _peersRefused;
    private readonly Counter<long> _unsupported;
    private readonly Counter<long> _protocolRefused;

    public ReplicatorMetrics(IMeterFactory meters, PeerStates peers, TimeProvider time)
    {
        _meter = meters.Create(MeterName);
        _applied = _meter.CreateCounter<long>("geo.replicator.applied", description: "Remote changes applied, by peer.");
        _skipped = _meter.CreateCounter<long>("geo.replicator.skipped", description: "Remote changes not newer than the stored value (duplicates, stale), by peer.");
        _refused = _meter.CreateCounter<long>("geo.replicator.refused", description: "Remote changes refused (residency excludes this region, or forged origin), by peer and reason.");
        _quarantined = _meter.CreateCounter<long>("geo.replicator.quarantined", description: "Remote changes beyond the HLC skew bound, not applied, by peer.");
        _conflicts = _meter.CreateCounter<long>("geo.replicator.conflicts", description: "Concurrent overwrites written to the conflict log, by shard.");
        _peersRefused = _meter.CreateCounter<long>("geo.replicator.peers_refused", description: "Replication calls refused by authentication, by claimed region.");
        _unsupported = _meter.CreateCounter<long>("geo.replicator.unsupported",
            description: "Remote changes held unacknowledged because this receiver does not know their kind (an older binary), by peer and kind; counted at every resend.");
        _protocolRefused = _meter.CreateCounter<long>("geo.replicator.protocol_refused",
            description: "Replication streams ended because the peer's protocol version is outside this binary's window, by peer.");
        _meter.CreateObservableGauge("geo.replicator.lag", () => peers.All.Values.Select(p =>
            new Measurement<double>(p.LagSeconds(time.GetUtcNow()), new KeyValuePair<string, object?>("peer", p.Peer))), unit: "s",
            description: "Seconds since the peer was last known to hold every change of this region; grows during a partition.");
        _meter.CreateObservableGauge("geo.replicator.pending", () => peers.All.Values.Select(p =>
            new Measurement<long>(p.Pending.Values.Sum(), new KeyValuePair<string, object?>("peer", p.Peer))),
            description: "Local changes the peer has not acknowledged.");
        _meter.CreateObservableGauge("geo.replicator.inbound_heartbeat_age", () => peers.All.Values.Select(p =>
            new Measurement<double>(Math.Max(0, (time.GetUtcNow() - p.InboundHeartbeatAt).TotalSeconds), new KeyValuePair<string, object?>("peer", p.Peer))), unit: "s",
            description: "Seconds since the last heartbeat from the peer arrived.");
    }

    public void Applied(string peer, int count) => Add(_applied, count, peer);

    public void Skipped(string peer, int count) => Add(_skipped, count, peer);

    public void Refused(string peer, string reason, int count)
    {
        if (count > 0)
        {
            _refused.Add(count, new KeyValuePair<string, object?>("peer", peer), new KeyValuePair<string, object?>("reason", reason));
        }
    }

    public void Quarantined(string peer, int count) => Add(_quarantined, count, peer);

    public void Conflicts(string shard, int count)
    {
        if (count > 0)
        {
            _conflicts.Add(count, new KeyValuePair<string, object?>("shard", shard));
        }
    }

    public void Unsupported(string peer, string kind) =>
        _unsupported.Add(1, new KeyValuePair<string, object?>("peer", peer), new KeyValuePair<string, object?>("kind", kind));

    public void ProtocolRefused(string peer) => _protocolRefused.Add(1, new KeyValuePair<string, object?>("peer", peer));

    public void PeerRefused(string region) => _peersRefused.Add(1, new KeyValuePair<string, object?>("region", region));

    public void Dispose() => _meter.Dispose();

    private static void Add(Counter<long> counter, int count, string peer)
    {
        if (count > 0)
        {
            counter.Add(count, new KeyValuePair<string, object?>("peer", peer));
        }
    }
}
