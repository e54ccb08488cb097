using System.Diagnostics.Metrics;

namespace Geo.ShardDirectory.Users;

/// <summary><c>geo.directory.entries_refused{reason}</c>: replicated directory entries refused for good (e.g. a residency change).</summary>
internal sealed class EntryMetrics
{
    private readonly Counter<long> _refused;

    public EntryMetrics(IMeterFactory meters)
    {
        _refused = meters.Create(UserCache.MeterName).CreateCounter<long>("geo.directory.entries_refused", "{entry}",
            "Replicated directory entries refused whatever their version, by reason (residency-change).");
    }

    public void ResidencyChangeRefused() => _refused.Add(1, new KeyValuePair<string, object?>("reason", "residency-change"));
}
