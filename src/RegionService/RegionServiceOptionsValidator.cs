using Geo.Core.Topology;
using Microsoft.Extensions.Options;

namespace Geo.RegionService;

/// <summary>Fails start-up with every configuration error at once: the topology's own, and this region's place in it.</summary>
internal sealed class RegionServiceOptionsValidator : IValidateOptions<RegionServiceOptions>
{
    public ValidateOptionsResult Validate(string? name, RegionServiceOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Topology))
        {
            return ValidateOptionsResult.Fail("Geo:Topology: missing; set it to the topology JSON path, e.g. --Geo:Topology=config/topology.local.json.");
        }

        GeoTopology topology;
        try
        {
            topology = TopologyLoader.Load(options.Topology);
        }
        catch (TopologyException ex)
        {
            return ValidateOptionsResult.Fail(ex.Errors);
        }

        return topology.Regions.ContainsKey(options.Region)
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Geo:Region: '{options.Region}' is not a region of {options.Topology}; use one of: {string.Join(", ", topology.Regions.Keys)}.");
    }
}
