using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Geo.EdgeRouter.Health;

/// <summary>
/// Passive health: one transport failure or one 500/502/504 from a destination takes it out for the cluster's reactivation
/// period, so the next request fails over at once instead of waiting for active probes. A 503 does not: the regional API
/// answers 503 when it sheds load, and moving an overloaded region's users onto its peers would spread the overload.
/// Active probes of <c>/healthz/ready</c> still catch a region whose dependencies are down.
/// </summary>
internal sealed class DestinationFailurePolicy(IDestinationHealthUpdater updater, IOptions<EdgeOptions> options) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "GeoDestinationFailure";

    private readonly TimeSpan _reactivation = options.Value.PassiveReactivationPeriod;

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        var error = context.GetForwarderErrorFeature()?.Error ?? ForwarderError.None;
        if (IsDestinationFailure(error, context.Response.StatusCode))
        {
            // From the options: reading the cluster config here gave YARP's 10 s default instead of the configured period.
            updater.SetPassive(cluster, destination, DestinationHealth.Unhealthy, _reactivation);
        }
    }

    /// <summary>True when the destination (not the client) failed the call.</summary>
    public static bool IsDestinationFailure(ForwarderError error, int statusCode) => error switch
    {
        ForwarderError.None => statusCode is StatusCodes.Status500InternalServerError or StatusCodes.Status502BadGateway or StatusCodes.Status504GatewayTimeout,
        ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.ResponseHeaders
            or ForwarderError.RequestBodyDestination or ForwarderError.ResponseBodyDestination => true,
        _ => false,
    };
}
