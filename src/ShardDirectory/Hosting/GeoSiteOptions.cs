using Geo.Core.Topology;
using Geo.ServiceDefaults.Topology;
using Microsoft.Extensions.Options;

namespace Geo.ShardDirectory.Hosting;

/// <summary>Where this process sits in the deployment: the topology file, its region, and its directory database.</summary>
internal sealed class GeoSiteOptions
{
    public const string SectionName = "Geo";

    /// <summary>Path of the topology JSON (docs/architecture.md §3), e.g. <c>config/topology.local.json</c>. Required.</summary>
    public string? Topology { get; set; }

    /// <summary>Id of this directory's region in the topology, e.g. <c>eu-west</c>. Required.</summary>
    public string? Region { get; set; }

    /// <summary>Connection string of the directory database; defaults to the region's <c>directoryDatabase</c> in the topology.</summary>
    public string? DirectoryDatabase { get; set; }
}

/// <summary>Reports every problem of the Geo section at once, each naming the key and the fix.</summary>
internal sealed class GeoSiteOptionsValidator(TopologyFile topology) : IValidateOptions<GeoSiteOptions>
{
    public ValidateOptionsResult Validate(string? name, GeoSiteOptions options)
    {
        var (_, errors) = DirectorySite.TryResolve(options, topology);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>The validated site: topology, this region, and the directory database's connection string.</summary>
internal sealed record DirectorySite(GeoTopology Topology, RegionInfo Region, string DirectoryDatabase)
{
    public string RegionId => Region.Id;

    public static DirectorySite Resolve(GeoSiteOptions options, TopologyFile file)
    {
        var (site, errors) = TryResolve(options, file);
        return site ?? throw new InvalidOperationException(string.Join(Environment.NewLine, errors));
    }

    /// <param name="options">The Geo section.</param>
    /// <param name="file">The process's topology file (Geo:Topology, read once).</param>
    public static (DirectorySite? Site, IReadOnlyList<string> Errors) TryResolve(GeoSiteOptions options, TopologyFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var errors = new List<string>();
        var topology = file.TryTopology;
        if (file.Path is null)
        {
            errors.Add("Geo:Topology: missing; set it to the topology JSON file, e.g. --Geo:Topology=config/topology.local.json.");
        }
        else if (topology is null)
        {
            errors.AddRange(file.Errors.Select(error => $"Geo:Topology ({file.Path}): {error}"));
        }

        RegionInfo? region = null;
        if (string.IsNullOrWhiteSpace(options.Region))
        {
            errors.Add("Geo:Region: missing; set it to this directory's region id, e.g. --Geo:Region=eu-west.");
        }
        else if (topology is not null && !topology.Regions.TryGetValue(options.Region, out region))
        {
            errors.Add($"Geo:Region: '{options.Region}' is not a region of the topology; use one of: {string.Join(", ", topology.Regions.Keys)}.");
        }

        var database = string.IsNullOrWhiteSpace(options.DirectoryDatabase) ? region?.DirectoryDatabase : options.DirectoryDatabase;
        if (region is not null && string.IsNullOrWhiteSpace(database))
        {
            errors.Add($"Geo:DirectoryDatabase: missing, and regions.{region.Id}.directoryDatabase is not in the topology; set one of them to a PostgreSQL connection string.");
        }

        return errors.Count == 0 && topology is not null && region is not null
            ? (new DirectorySite(topology, region, database!), errors)
            : (null, errors);
    }
}
