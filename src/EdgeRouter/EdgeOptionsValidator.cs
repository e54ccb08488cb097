using Geo.ServiceDefaults.Topology;
using Microsoft.Extensions.Options;

namespace Geo.EdgeRouter;

/// <summary>Fails start-up with every configuration error at once: the topology's own, and this edge's place in it.</summary>
internal sealed class EdgeSiteOptionsValidator(TopologyFile topology) : IValidateOptions<EdgeSiteOptions>
{
    public ValidateOptionsResult Validate(string? name, EdgeSiteOptions options)
        => TopologySettings.Validate(topology, options.Region) is { Count: > 0 } errors ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}

/// <summary>Cross-field rules of <see cref="EdgeOptions"/> that attributes cannot express.</summary>
internal sealed class EdgeOptionsValidator : IValidateOptions<EdgeOptions>
{
    public ValidateOptionsResult Validate(string? name, EdgeOptions options)
    {
        var errors = new List<string>();
        if (options.HealthCheckTimeout > options.HealthCheckInterval)
        {
            errors.Add($"Geo:Edge:HealthCheckTimeout ({options.HealthCheckTimeout}) exceeds Geo:Edge:HealthCheckInterval ({options.HealthCheckInterval}); lower the timeout or raise the interval, or probes overlap.");
        }

        if (options.ClientBurst < options.ClientRequestsPerSecond)
        {
            errors.Add($"Geo:Edge:ClientBurst ({options.ClientBurst}) is below Geo:Edge:ClientRequestsPerSecond ({options.ClientRequestsPerSecond}); set the burst at least as high as the rate.");
        }

        if (options.UserBurst < options.UserRequestsPerSecond)
        {
            errors.Add($"Geo:Edge:UserBurst ({options.UserBurst}) is below Geo:Edge:UserRequestsPerSecond ({options.UserRequestsPerSecond}); set the burst at least as high as the rate.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
