using System.Diagnostics.Metrics;

namespace Geo.ServiceDefaults.Tls;

/// <summary><c>geo_peer_refused_total{operation,reason}</c>: internal calls refused for a missing or insufficient identity.</summary>
public sealed class PeerMetrics : IDisposable
{
    private readonly Meter _meter = new("Geo.Peers");
    private readonly Counter<long> _refused;

    public PeerMetrics()
    {
        _refused = _meter.CreateCounter<long>("geo_peer_refused", description: "Internal calls refused: no client certificate, or a role or region the call does not allow.");
    }

    public void Refused(string operation, string reason) => _refused.Add(1, new("operation", operation), new("reason", reason));

    public void Dispose() => _meter.Dispose();
}
