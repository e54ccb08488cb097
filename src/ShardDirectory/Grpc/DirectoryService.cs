using Geo.ShardDirectory.Hosting;
using Geo.ShardDirectory.ShardMaps;
using Geo.ShardDirectory.Users;
using Microsoft.Extensions.Options;
using DirectoryApi = Geo.Contracts.Directory.Directory;

namespace Geo.ShardDirectory.Grpc;

/// <summary>The gRPC surface of the directory; the user calls live in Users/, the map and move calls in ShardMaps/.</summary>
internal sealed partial class DirectoryService(
    UserStore users,
    UserCache cache,
    EntryMetrics entryMetrics,
    ShardMapStore maps,
    ShardMapHub hub,
    DirectorySite site,
    Geo.ServiceDefaults.Topology.TopologyFile topologyFile,
    Core.Clock.HybridLogicalClock clock,
    TimeProvider time,
    IOptions<DirectoryOptions> options,
    Geo.ServiceDefaults.Lifecycle.GracefulShutdown shutdown,
    ILogger<DirectoryService> logger) : DirectoryApi.DirectoryBase
{
    private string RegionOrOwn(string region) => string.IsNullOrEmpty(region) ? site.RegionId : region;
}
