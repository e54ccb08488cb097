using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Geo.Storage.Retention;

namespace Geo.Replicator.Retention;

/// <summary>
/// Meter <c>Geo.Retention</c> (exported on /metrics): rows each retention job removed per table and shard, how long a
/// pass took, and when each shard's last pass finished (an alert fires when that stops moving).
/// </summary>
internal sealed class RetentionMetrics : IDisposable
{
    public const string MeterName = "Geo.Retention";

    private readonly Meter _meter;
    private readonly Counter<long> _removed;
    private readonly Histogram<double> _duration;
    private readonly ConcurrentDictionary<string, long> _lastRun = new(StringComparer.Ordinal);

    public RetentionMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        _removed = _meter.CreateCounter<long>("geo.retention.removed", unit: "{row}",
            description: "Rows removed by retention, by table (idempotency, conflicts, tombstones, change_log) and shard.");
        _duration = _meter.CreateHistogram<double>("geo.retention.duration", unit: "s", description: "Duration of one retention pass over one shard.");
        _meter.CreateObservableGauge("geo.retention.last_run", () => _lastRun.Select(r =>
            new Measurement<long>(r.Value, new KeyValuePair<string, object?>("shard", r.Key))), unit: "s",
            description: "Unix time at which the last retention pass over the shard finished.");
    }

    public void Pass(RetentionPass pass)
    {
        Removed(pass.ShardId, "idempotency", pass.Idempotency);
        Removed(pass.ShardId, "conflicts", pass.Conflicts);
        Removed(pass.ShardId, "tombstones", pass.Tombstones);
        _duration.Record(pass.Duration.TotalSeconds, new KeyValuePair<string, object?>("shard", pass.ShardId));
        _lastRun[pass.ShardId] = pass.FinishedAt.ToUnixTimeSeconds();
    }

    public void Removed(string shard, string table, int count)
    {
        if (count > 0)
        {
            _removed.Add(count, new KeyValuePair<string, object?>("table", table), new KeyValuePair<string, object?>("shard", shard));
        }
    }

    public void Dispose() => _meter.Dispose();
}
