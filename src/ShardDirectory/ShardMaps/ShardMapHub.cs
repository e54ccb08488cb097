using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Geo.Contracts.Directory;
using Geo.ShardDirectory.Users;

namespace Geo.ShardDirectory.ShardMaps;

/// <summary>
/// The latest committed map of each region in this process, and a signal for watchers. Fed after every local commit,
/// by NOTIFY from other processes and by polling (<see cref="ShardMapListener"/>). Maps only move forward in epoch.
/// </summary>
internal sealed class ShardMapHub
{
    private readonly ConcurrentDictionary<string, RegionState> _regions = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    public ShardMapHub(TimeProvider time, IMeterFactory meters)
    {
        _time = time;
        var meter = meters.Create(UserCache.MeterName);
        meter.CreateObservableGauge(
            "geo.directory.shard_map.epoch",
            () => _regions.Select(kv => new Measurement<long>(kv.Value.Map?.Epoch ?? 0, new KeyValuePair<string, object?>("region", kv.Key))),
            description: "Epoch of the shard map this directory process serves, per region.");
    }

    public ShardMap? Current(string region) => _regions.TryGetValue(region, out var state) ? state.Map : null;

    /// <summary>Takes <paramref name="map"/> when it is newer than the one held and wakes the watchers; false otherwise.</summary>
    public bool Publish(ShardMap map)
    {
        var state = _regions.GetOrAdd(map.Region, _ => new RegionState());
        TaskCompletionSource previous;
        lock (state)
        {
            if (state.Map is not null && state.Map.Epoch >= map.Epoch)
            {
                return false;
            }

            state.Map = map;
            previous = state.Changed;
            state.Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        previous.TrySetResult();
        return true;
    }

    /// <summary>Waits until the region's map is newer than <paramref name="epoch"/>; false after <paramref name="timeout"/>.</summary>
    public async Task<bool> WaitForNewerAsync(string region, long epoch, TimeSpan timeout, CancellationToken ct)
    {
        var state = _regions.GetOrAdd(region, _ => new RegionState());
        Task changed;
        lock (state)
        {
            if (state.Map is not null && state.Map.Epoch > epoch)
            {
                return true;
            }

            changed = state.Changed.Task;
        }

        try
        {
            await changed.WaitAsync(timeout, _time, ct);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private sealed class RegionState
    {
        public ShardMap? Map { get; set; }

        public TaskCompletionSource Changed { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
