using Geo.ServiceDefaults.Topology;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Hosting;

/// <summary>Fails start-up with every problem of the <c>Geo</c> section at once, each naming the key and the fix.</summary>
internal sealed class GeoSiteOptionsValidator(TopologyFile topology) : IValidateOptions<GeoSiteOptions>
{
    public ValidateOptionsResult Validate(string? name, GeoSiteOptions options)
        => TopologySettings.Validate(topology, options.Region) is { Count: > 0 } errors
            ? ValidateOptionsResult.Fail(errors)
            : ValidateOptionsResult.Success;
}

/// <summary>Checks the <c>Replicator</c> section: address overrides name known regions and valid URLs.</summary>
internal sealed class ReplicatorOptionsValidator(TopologyFile file) : IValidateOptions<ReplicatorOptions>
{
    public ValidateOptionsResult Validate(string? name, ReplicatorOptions options)
    {
        var errors = new List<string>();
        var topology = file.TryTopology; // null: reported by GeoSiteOptionsValidator

        foreach (var (peer, address) in options.PeerAddresses)
        {
            if (topology is not null && !topology.Regions.ContainsKey(peer))
            {
                errors.Add($"Replicator:PeerAddresses:{peer}: not a region of the topology; use one of: {string.Join(", ", topology.Regions.Keys)}.");
            }

            if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                errors.Add($"Replicator:PeerAddresses:{peer}: '{address}' is not an http(s) URL; use e.g. http://127.0.0.1:8111.");
            }
        }

        if (options.MaxBackoff < options.InitialBackoff)
        {
            errors.Add("Replicator:MaxBackoff: smaller than Replicator:InitialBackoff; raise it.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
