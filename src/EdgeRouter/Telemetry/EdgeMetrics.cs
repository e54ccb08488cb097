using System.Diagnostics.Metrics;

namespace Geo.EdgeRouter.Telemetry;

/// <summary>Meter <c>Geo.EdgeRouter</c>: what was routed where, and what was refused why.</summary>
internal sealed class EdgeMetrics
{
    public const string MeterName = "Geo.EdgeRouter";

    private readonly Counter<long> _routed;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _retried;

    public EdgeMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _routed = meter.CreateCounter<long>("geo.edge.routed", "{request}", "Requests forwarded, by target region and failover flag.");
        _rejected = meter.CreateCounter<long>("geo.edge.rejected", "{request}", "Requests the edge answered itself, by reason.");
        _retried = meter.CreateCounter<long>("geo.edge.retried", "{request}", "Requests sent again elsewhere because a region refused the connection, by that region.");
    }

    public void Routed(string region, bool failover)
        => _routed.Add(1, new KeyValuePair<string, object?>("region", region), new KeyValuePair<string, object?>("failover", failover ? "true" : "false"));

    public void Retried(string region) => _retried.Add(1, new KeyValuePair<string, object?>("region", region));

    public void Rejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason));
}
