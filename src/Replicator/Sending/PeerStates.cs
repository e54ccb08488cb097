using Geo.Core.Topology;
using Geo.Replicator.Hosting;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Sending;

/// <summary>One <see cref="PeerState"/> per peer region of the topology, shared by links, receiver, status and metrics.</summary>
internal sealed class PeerStates
{
    public PeerStates(GeoTopology topology, IOptions<GeoSiteOptions> site, TimeProvider time)
    {
        var now = time.GetUtcNow();
        Local = site.Value.Region;
        All = topology.Regions.Keys.Where(r => r != Local).ToDictionary(r => r, r => new PeerState(r, now), StringComparer.Ordinal);
    }

    public string Local { get; }

    public IReadOnlyDictionary<string, PeerState> All { get; }
}
