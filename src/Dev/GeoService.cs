using Geo.Core.Topology;
using Geo.Core.Tls;

namespace Geo.Dev;

/// <summary>
/// One of the four service projects under src/: where its URL lives in the topology, the role its certificate names,
/// and whether it speaks HTTP/2 only (the gRPC services). <see cref="All"/> is the start order of a region: directories
/// first (the APIs, edges and replicators read users and shard maps from them).
/// </summary>
public sealed record GeoService(string Project, string TopologyKey, string Role, bool Http2Only)
{
    public static readonly GeoService ShardDirectory = new("ShardDirectory", "directory", PeerRoles.Directory, Http2Only: true);
    public static readonly GeoService RegionService = new("RegionService", "api", PeerRoles.Api, Http2Only: false);
    public static readonly GeoService EdgeRouter = new("EdgeRouter", "edge", PeerRoles.Edge, Http2Only: false);
    public static readonly GeoService Replicator = new("Replicator", "replicator", PeerRoles.Replicator, Http2Only: true);

    /// <summary>Every service, in start order.</summary>
    public static readonly IReadOnlyList<GeoService> All = [ShardDirectory, RegionService, EdgeRouter, Replicator];

    /// <summary>The service built from <c>src/{project}</c>.</summary>
    public static GeoService Of(string project) => All.FirstOrDefault(s => s.Project == project)
        ?? throw new ArgumentException($"'{project}' is not a Geo service project ({string.Join(", ", All.Select(s => s.Project))}).", nameof(project));

    /// <summary>The service's (first) URL in <paramref name="region"/>.</summary>
    public Uri Url(RegionInfo region)
    {
        ArgumentNullException.ThrowIfNull(region);
        return TopologyKey switch
        {
            "directory" => region.Directory,
            "api" => region.Api[0],
            "edge" => region.Edge,
            _ => region.Replicator,
        };
    }

    /// <summary>The built assembly: <c>src/{Project}/bin/{configuration}/net10.0/Geo.{Project}.dll</c> under <paramref name="repositoryRoot"/>.</summary>
    public string AssemblyPath(string repositoryRoot, string configuration = "Release")
        => Path.Combine(repositoryRoot, "src", Project, "bin", configuration, "net10.0", $"Geo.{Project}.dll");

    /// <summary>The folder holding Geo.sln at or above <paramref name="start"/>.</summary>
    public static string RepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Geo.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("Geo.sln not found above " + start);
    }
}
