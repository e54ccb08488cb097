using Geo.ServiceDefaults.Lifecycle;
using Yarp.ReverseProxy.Transforms;

namespace Geo.EdgeRouter.Health;

/// <summary>
/// A regional API that is stopping answers with <c>Geo-Draining: true</c> while it still serves. The edge takes the
/// header off the client's response (it describes the API, not the edge, and a load balancer in front of the edge must not
/// read it as the edge draining) and remembers it, so <see cref="DestinationFailurePolicy"/> takes the destination out at
/// once instead of after the next failed active probes.
/// </summary>
internal static class DrainingDestinations
{
    private static readonly object Key = new();

    /// <summary>Adds the response transform to every route.</summary>
    public static IReverseProxyBuilder AddDrainingDetection(this IReverseProxyBuilder proxy)
        => proxy.AddTransforms(static context => context.AddResponseTransform(static transform =>
        {
            if (transform.ProxyResponse?.Headers.Contains(GracefulShutdown.DrainingHeader) == true)
            {
                transform.HttpContext.Items[Key] = true;
                transform.HttpContext.Response.Headers.Remove(GracefulShutdown.DrainingHeader);
            }

            return ValueTask.CompletedTask;
        }));

    /// <summary>True when the destination that answered this request said it is draining.</summary>
    public static bool AnsweredDraining(HttpContext context) => context.Items.ContainsKey(Key);
}
