namespace Geo.ServiceDefaults.Topology;

/// <summary>The start-up check every regional service makes of <c>Geo:Topology</c> and <c>Geo:Region</c>.</summary>
public static class TopologySettings
{
    /// <summary>
    /// Every error at once, each naming its key and the fix: a missing path, the topology's own errors, or a region the
    /// topology does not have. Empty when both settings are good.
    /// </summary>
    public static IReadOnlyList<string> Validate(TopologyFile file, string? region)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (file.Path is null)
        {
            return ["Geo:Topology: missing; set it to the topology JSON path, e.g. --Geo:Topology=config/topology.local.json."];
        }

        if (file.TryTopology is not { } topology)
        {
            return file.Errors;
        }

        return region is not null && topology.Regions.ContainsKey(region)
            ? []
            : [$"Geo:Region: '{region}' is not a region of {file.Path}; set it to this service's region, one of: {string.Join(", ", topology.Regions.Keys)}."];
    }
}
