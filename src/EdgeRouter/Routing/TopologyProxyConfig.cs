using Geo.Core.Topology;
using Geo.EdgeRouter.Health;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;

namespace Geo.EdgeRouter.Routing;

/// <summary>
/// YARP's configuration, built from the topology: one cluster per region (its API URLs as destinations, active and
/// passive health checks, a per-call activity timeout) and one route for <c>/v1/**</c> bound to a cluster without
/// destinations. <see cref="RegionRoutingMiddleware"/> reassigns every request to a region's cluster; a request it did not
/// place finds no destination and gets 503 — never a default region.
/// </summary>
internal sealed class TopologyProxyConfig(GeoTopology topology, IOptions<EdgeOptions> options) : IProxyConfigProvider
{
    public const string UnroutedCluster = "unrouted";
    public const string ApiRoute = "api";

    private readonly Config _config = Build(topology, options.Value);

    public IProxyConfig GetConfig() => _config;

    private static Config Build(GeoTopology topology, EdgeOptions o)
    {
        var clusters = topology.Regions.Values.Select(region => new ClusterConfig
        {
            ClusterId = region.Id,
            Destinations = region.Api
                .Select((uri, i) => (Id: ResidencyGuard.DestinationId(region.Id, i), Config: new DestinationConfig { Address = uri.ToString() }))
                .ToDictionary(d => d.Id, d => d.Config, StringComparer.Ordinal),
            HealthCheck = new HealthCheckConfig
            {
                // Healthy and not-yet-probed destinations only: "HealthyOrPanic" would send traffic to dead ones.
                AvailableDestinationsPolicy = HealthCheckConstants.AvailableDestinations.HealthyAndUnknown,
                Active = new ActiveHealthCheckConfig
                {
                    Enabled = true,
                    Interval = o.HealthCheckInterval,
                    Timeout = o.HealthCheckTimeout,
                    Policy = HealthCheckConstants.ActivePolicy.ConsecutiveFailures,
                    Path = "/healthz/ready",
                },
                Passive = new PassiveHealthCheckConfig
                {
                    Enabled = true,
                    Policy = DestinationFailurePolicy.PolicyName,
                    ReactivationPeriod = o.PassiveReactivationPeriod,
                },
            },
            HttpRequest = new ForwarderRequestConfig { ActivityTimeout = o.ProxyTimeout },
            Metadata = new Dictionary<string, string>
            {
                ["ConsecutiveFailuresHealthPolicy.Threshold"] = o.HealthCheckFailureThreshold.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        }).Append(new ClusterConfig { ClusterId = UnroutedCluster, Destinations = new Dictionary<string, DestinationConfig>() }).ToList();

        var routes = new List<RouteConfig>
        {
            new() { RouteId = ApiRoute, ClusterId = UnroutedCluster, Match = new RouteMatch { Path = "/v1/{**rest}" } },
            // The contract (/openapi/v1.json) and its rendered reference (/scalar): no user data, served by the nearest healthy region.
            new() { RouteId = ApiRoute + "-openapi", ClusterId = UnroutedCluster, Match = new RouteMatch { Path = "/openapi/{**rest}", Methods = ["GET", "HEAD"] } },
            new() { RouteId = ApiRoute + "-reference", ClusterId = UnroutedCluster, Match = new RouteMatch { Path = "/scalar/{**rest}", Methods = ["GET", "HEAD"] } },
        };
        return new Config(routes, clusters);
    }

    private sealed class Config(IReadOnlyList<RouteConfig> routes, IReadOnlyList<ClusterConfig> clusters) : IProxyConfig
    {
        public IReadOnlyList<RouteConfig> Routes { get; } = routes;

        public IReadOnlyList<ClusterConfig> Clusters { get; } = clusters;

        // The topology is fixed for the life of the process.
        public IChangeToken ChangeToken { get; } = new CancellationChangeToken(CancellationToken.None);
    }
}
