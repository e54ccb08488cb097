using System.Collections.Immutable;

namespace Geo.Core.Topology;

/// <summary>A validated deployment: regions, their endpoints and shards, and the latency table.</summary>
public sealed class GeoTopology
{
    /// <summary>Residency that allows every region.</summary>
    public const string GlobalResidency = "global";

    private readonly ImmutableDictionary<string, ImmutableDictionary<string, int>> _latency;

    internal GeoTopology(ImmutableSortedDictionary<string, RegionInfo> regions, ImmutableDictionary<string, ImmutableDictionary<string, int>> latency)
    {
        Regions = regions;
        _latency = latency;
        Jurisdictions = regions.Values.Select(r => r.Jurisdiction).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToImmutableArray();
    }

    /// <summary>Regions by id, sorted.</summary>
    public ImmutableSortedDictionary<string, RegionInfo> Regions { get; }

    /// <summary>Every jurisdiction that has at least one region, sorted.</summary>
    public ImmutableArray<string> Jurisdictions { get; }

    /// <summary>The region, or an exception naming the known ones.</summary>
    public RegionInfo Region(string regionId)
        => Regions.TryGetValue(regionId, out var region)
            ? region
            : throw new KeyNotFoundException($"Unknown region '{regionId}'; the topology has: {string.Join(", ", Regions.Keys)}.");

    /// <summary>True for <c>global</c> and for every jurisdiction that has a region.</summary>
    public bool IsKnownResidency(string? residency)
        => residency is not null && (residency == GlobalResidency || Jurisdictions.Contains(residency));

    /// <summary>The replica set: regions whose jurisdiction equals the residency (all of them for <c>global</c>), sorted.</summary>
    public IReadOnlyList<string> AllowedRegions(string residency)
        => Regions.Values
            .Where(r => residency == GlobalResidency || string.Equals(r.Jurisdiction, residency, StringComparison.Ordinal))
            .Select(r => r.Id)
            .ToArray();

    /// <summary>True when <paramref name="regionId"/> may hold data of a user with <paramref name="residency"/>.</summary>
    public bool IsAllowed(string residency, string regionId)
        => Regions.TryGetValue(regionId, out var region)
            && (residency == GlobalResidency || string.Equals(region.Jurisdiction, residency, StringComparison.Ordinal));

    /// <summary>Latency from one region to another: 0 to itself, the table's figure, or <see cref="int.MaxValue"/> when unknown.</summary>
    public int LatencyMs(string from, string to)
    {
        if (string.Equals(from, to, StringComparison.Ordinal))
        {
            return 0;
        }

        if (_latency.TryGetValue(from, out var row) && row.TryGetValue(to, out var ms))
        {
            return ms;
        }

        return _latency.TryGetValue(to, out var back) && back.TryGetValue(from, out var msBack) ? msBack : int.MaxValue;
    }

    /// <summary><paramref name="candidates"/> ordered nearest first from <paramref name="from"/> (ties by id): the failover order.</summary>
    public IReadOnlyList<string> ByLatencyFrom(string from, IEnumerable<string> candidates)
        => candidates.OrderBy(c => LatencyMs(from, c)).ThenBy(c => c, StringComparer.Ordinal).ToArray();

    /// <summary>
    /// Where a new user lives: the edge's own region when the residency allows it, else the nearest allowed one.
    /// </summary>
    public string PickHomeRegion(string edgeRegion, string residency)
    {
        var allowed = AllowedRegions(residency);
        if (allowed.Count == 0)
        {
            throw new ArgumentException($"Residency '{residency}' allows no region of this topology.", nameof(residency));
        }

        return ByLatencyFrom(edgeRegion, allowed)[0];
    }

    /// <summary>Regions that share a jurisdiction with <paramref name="regionId"/> (excluding it): peers for non-global users.</summary>
    public IReadOnlyList<string> JurisdictionPeers(string regionId)
    {
        var jurisdiction = Region(regionId).Jurisdiction;
        return Regions.Values
            .Where(r => r.Id != regionId && string.Equals(r.Jurisdiction, jurisdiction, StringComparison.Ordinal))
            .Select(r => r.Id)
            .ToArray();
    }

    /// <summary>The region that owns <paramref name="shardId"/>, if any.</summary>
    public RegionInfo? RegionOfShard(string shardId) => Regions.Values.FirstOrDefault(r => r.Shards.ContainsKey(shardId));
}

/// <summary>One region of a validated topology.</summary>
public sealed record RegionInfo(
    string Id,
    string Jurisdiction,
    Uri Edge,
    ImmutableArray<Uri> Api,
    Uri Directory,
    Uri Replicator,
    string Redis,
    string? DirectoryDatabase,
    ImmutableSortedDictionary<string, string> Shards);
