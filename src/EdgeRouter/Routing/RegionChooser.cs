using Geo.Core.Topology;

namespace Geo.EdgeRouter.Routing;

/// <summary>Where a request may go and where it goes: pure, so the residency rule can be tested exhaustively.</summary>
internal static class RegionChooser
{
    /// <summary>
    /// The user's allowed regions in failover order: <paramref name="preferred"/> first when allowed, then the rest by
    /// latency from it. Never contains a region outside the residency.
    /// </summary>
    public static IReadOnlyList<string> FailoverOrder(GeoTopology topology, string residency, string preferred)
    {
        var allowed = topology.AllowedRegions(residency);
        var ordered = topology.ByLatencyFrom(preferred, allowed).ToList();
        if (ordered.Remove(preferred))
        {
            // ByLatencyFrom ranks by latency; a table entry of 0 ms to a peer must not outrank the preferred region itself.
            ordered.Insert(0, preferred);
        }

        return ordered;
    }

    /// <summary>
    /// The first healthy region of <see cref="FailoverOrder"/>, or none. <paramref name="preferred"/> is the user's home
    /// region, or for a new user the edge's own region.
    /// </summary>
    public static RegionChoice Choose(GeoTopology topology, string residency, string preferred, Func<string, bool> isHealthy)
    {
        var order = FailoverOrder(topology, residency, preferred);
        foreach (var region in order)
        {
            if (isHealthy(region))
            {
                return new RegionChoice(region, order);
            }
        }

        return new RegionChoice(null, order);
    }
}

/// <summary>The chosen region (null: none of the allowed ones is healthy) and the order it was chosen from.</summary>
internal sealed record RegionChoice(string? Target, IReadOnlyList<string> Order)
{
    /// <summary>True when the request is served by another region than the first choice.</summary>
    public bool IsFailover => Target is not null && Order.Count > 0 && !string.Equals(Target, Order[0], StringComparison.Ordinal);
}
