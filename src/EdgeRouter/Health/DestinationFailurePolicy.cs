using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Geo.EdgeRouter.Health;

/// <summary>
/// Passive health: a transport failure (connect, reset, timeout) or a 502/504 from a destination takes it out for the
/// cluster's reactivation period, so the next request fails over at once instead of waiting for active probes. A 500 or
/// a 4xx never does: it is the answer to one request (a bad one, or a bug that request hit), and counting it would let
/// any caller eject a healthy region. A 503 does only when something other than the regional API answered it (no
/// <c>Geo-Region</c> header): the API answers 503 itself when it sheds load or waits out a shard move, and moving an
/// overloaded region's users onto its peers would spread the overload. Active probes of <c>/healthz/ready</c> still
/// catch a region whose dependencies are down. An answer marked <c>Geo-Draining</c> (the API is stopping; see
/// <see cref="DrainingDestinations"/>) takes the destination out too.
/// </summary>
internal sealed class DestinationFailurePolicy(
    IDestinationHealthUpdater updater,
    IClusterDestinationsUpdater destinations,
    IServiceProvider services,
    IOptions<EdgeOptions> options) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "GeoDestinationFailure";

    private readonly TimeSpan _reactivation = options.Value.PassiveReactivationPeriod;

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        var error = context.GetForwarderErrorFeature()?.Error ?? ForwarderError.None;
        if (IsDestinationFailure(error, context.Response.StatusCode, answeredByApi: context.Response.Headers.ContainsKey(RegionHeader))
            || DrainingDestinations.AnsweredDraining(context))
        {
            MarkUnhealthy(context, cluster, destination);
        }
    }

    /// <summary>Takes the destination out now: the next request, even one already being routed, no longer selects it.</summary>
    public void MarkUnhealthy(HttpContext context, ClusterState routeCluster, DestinationState destination)
    {
        // YARP passes the route's cluster, which for a request routing reassigned is the empty "unrouted" one; ejecting
        // the destination there left the region's own list unchanged until the next active probe (the 502 window).
        // Resolved per call: taking IProxyStateLookup in the constructor hung the edge at start-up (YARP builds its proxy state while constructing its own services).
        var proxy = services.GetRequiredService<IProxyStateLookup>();
        var cluster = context.GetReverseProxyFeature().Cluster is { } model && proxy.TryGetCluster(model.Config.ClusterId, out var routed)
            ? routed
            : routeCluster;

        // From the options: reading the cluster config here gave YARP's 10 s default instead of the configured period.
        updater.SetPassive(cluster, destination, DestinationHealth.Unhealthy, _reactivation);

        // SetPassive recomputes the available destinations on the thread pool; do it now so the retry and the next
        // request already see the ejection.
        destinations.UpdateAvailableDestinations(cluster);
    }

    private const string RegionHeader = Contracts.GeoHeaders.Region;

    /// <summary>True when the destination (not the client, nor one request) failed the call.</summary>
    public static bool IsDestinationFailure(ForwarderError error, int statusCode, bool answeredByApi = true) => error switch
    {
        ForwarderError.None => statusCode is StatusCodes.Status502BadGateway or StatusCodes.Status504GatewayTimeout
            || (statusCode == StatusCodes.Status503ServiceUnavailable && !answeredByApi),
        ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.ResponseHeaders => true,
        // A destination that answers before reading a whole body (413, 415, 400) closes the upload: a body error after
        // its answer arrived is the answer to that request, not a failure of the destination.
        ForwarderError.RequestBodyDestination or ForwarderError.ResponseBodyDestination => statusCode >= StatusCodes.Status500InternalServerError,
        _ => false,
    };

    /// <summary>
    /// True when the call failed while connecting (refused, unreachable, reset during the handshake): no byte of the
    /// request reached the destination, so sending it elsewhere cannot apply it twice. Anything later is ambiguous.
    /// </summary>
    public static bool NeverReachedDestination(IForwarderErrorFeature? failure)
    {
        if (failure is not { Error: ForwarderError.Request })
        {
            return false;
        }

        for (var e = failure.Exception; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError }
                || e is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// True when a failed call may be sent to another destination: it never reached this one, or it failed before any
    /// response arrived and repeating it is harmless — an idempotent method (GET, HEAD, PUT, DELETE, OPTIONS) or a
    /// request with an <c>Idempotency-Key</c> (the regional API replays the first outcome for the key).
    /// </summary>
    public static bool MayResend(IForwarderErrorFeature? failure, HttpRequest request)
    {
        if (NeverReachedDestination(failure))
        {
            return true;
        }

        return failure is { Error: ForwarderError.Request }
            && (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsPut(request.Method)
                || HttpMethods.IsDelete(request.Method) || HttpMethods.IsOptions(request.Method)
                || request.Headers.ContainsKey(IdempotencyKeyHeader));
    }

    private const string IdempotencyKeyHeader = "Idempotency-Key";
}
