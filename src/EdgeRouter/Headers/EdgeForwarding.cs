using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Geo.EdgeRouter.Headers;

/// <summary>
/// Which proxies in front of the edge may say who the client is (section <c>Geo:Edge:Forwarding</c>). Only a peer inside
/// <see cref="TrustedNetworks"/> has its <c>X-Forwarded-For</c>/<c>-Proto</c> applied; from anyone else the headers are
/// ignored, so a client cannot choose the address its unauthenticated rate limit is keyed on.
/// </summary>
internal sealed class EdgeForwardingOptions
{
    public const string SectionName = "Geo:Edge:Forwarding";

    /// <summary>CIDR ranges of the load balancers in front of the edge (e.g. <c>10.0.0.0/16</c>). Default: none.</summary>
    public string[] TrustedNetworks { get; set; } = [];

    /// <summary>Proxies in a chain that are unwrapped from <c>X-Forwarded-For</c>. Default 1 (one balancer).</summary>
    public int ForwardLimit { get; set; } = 1;
}

/// <summary>Every unparsable network at once.</summary>
internal sealed class EdgeForwardingOptionsValidator : IValidateOptions<EdgeForwardingOptions>
{
    public ValidateOptionsResult Validate(string? name, EdgeForwardingOptions options)
    {
        var errors = options.TrustedNetworks.Where(n => !System.Net.IPNetwork.TryParse(n, out _))
            .Select(n => $"{EdgeForwardingOptions.SectionName}:TrustedNetworks: '{n}' is not a CIDR range such as 10.0.0.0/16.").ToList();
        if (options.ForwardLimit is < 1 or > 10)
        {
            errors.Add($"{EdgeForwardingOptions.SectionName}:ForwardLimit ({options.ForwardLimit}) must be between 1 and 10.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal static class EdgeForwarding
{
    public static IServiceCollection AddEdgeForwarding(this IServiceCollection services)
    {
        services.AddOptions<EdgeForwardingOptions>().BindConfiguration(EdgeForwardingOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<EdgeForwardingOptions>, EdgeForwardingOptionsValidator>();
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<EdgeForwardingOptions>>((o, edge) =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            o.ForwardLimit = edge.Value.ForwardLimit;
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var network in edge.Value.TrustedNetworks)
            {
                if (System.Net.IPNetwork.TryParse(network, out var parsed))
                {
                    o.KnownIPNetworks.Add(parsed);
                }
            }
        });
        return services;
    }

    /// <summary>Applies forwarded headers from trusted proxies only; with none configured it changes nothing.</summary>
    public static WebApplication UseEdgeForwarding(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<EdgeForwardingOptions>>().Value.TrustedNetworks.Length > 0)
        {
            app.UseForwardedHeaders();
        }

        return app;
    }
}
