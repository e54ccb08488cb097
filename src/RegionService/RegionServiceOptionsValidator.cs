using Geo.ServiceDefaults.Topology;
using Microsoft.Extensions.Options;

namespace Geo.RegionService;

/// <summary>Fails start-up with every configuration error at once: the topology's own, and this region's place in it.</summary>
internal sealed class RegionServiceOptionsValidator(TopologyFile topology) : IValidateOptions<RegionServiceOptions>
{
    public ValidateOptionsResult Validate(string? name, RegionServiceOptions options)
        => TopologySettings.Validate(topology, options.Region) is { Count: > 0 } errors
            ? ValidateOptionsResult.Fail(errors)
            : ValidateOptionsResult.Success;
}
