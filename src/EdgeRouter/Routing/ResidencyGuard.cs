using Geo.Core.Topology;
using Yarp.ReverseProxy.Model;

namespace Geo.EdgeRouter.Routing;

/// <summary>
/// The last check before bytes leave the edge: the cluster and every destination still selectable belong to a region the
/// user's residency allows. Routing should already guarantee it; this makes a routing bug a refused request, not a leak.
/// </summary>
internal static class ResidencyGuard
{
    /// <summary>Destination ids are <c>{region}/{n}</c>, so a destination names its region without a lookup.</summary>
    public static string DestinationId(string region, int index) => $"{region}/{index}";

    public static string RegionOfDestination(string destinationId)
    {
        var slash = destinationId.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? destinationId : destinationId[..slash];
    }

    /// <summary>Null when allowed, else why not.</summary>
    public static string? Check(GeoTopology topology, string residency, string clusterId, IEnumerable<string> destinationIds)
    {
        if (!topology.IsAllowed(residency, clusterId))
        {
            return $"cluster '{clusterId}' is outside residency '{residency}'";
        }

        foreach (var id in destinationIds)
        {
            var region = RegionOfDestination(id);
            if (!string.Equals(region, clusterId, StringComparison.Ordinal) || !topology.IsAllowed(residency, region))
            {
                return $"destination '{id}' is outside residency '{residency}'";
            }
        }

        return null;
    }

    public static string? Check(GeoTopology topology, string residency, IReverseProxyFeature proxy)
        => Check(topology, residency, proxy.Cluster.Config.ClusterId, proxy.AvailableDestinations.Select(d => d.DestinationId));
}
