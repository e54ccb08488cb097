using Geo.Core.Topology;
using Geo.EdgeRouter.Telemetry;
using Geo.ServiceDefaults.Problems;
using Yarp.ReverseProxy.Model;

namespace Geo.EdgeRouter.Routing;

/// <summary>The last step before the forwarder: refuses (and logs as critical) anything routing placed outside residency.</summary>
internal sealed partial class ResidencyGuardMiddleware(RequestDelegate next, GeoTopology topology, EdgeMetrics metrics, ILogger<ResidencyGuardMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var proxy = context.Features.Get<IReverseProxyFeature>();
        var routed = context.Features.Get<RoutedRequest>();
        var violation = proxy is null || routed is null
            ? "request reached the forwarder without a routing decision"
            : ResidencyGuard.Check(topology, routed.Residency, proxy);
        if (violation is not null)
        {
            LogGuardTripped(logger, violation);
            metrics.Rejected("residency-guard");
            await GeoProblems.WriteAsync(context, StatusCodes.Status500InternalServerError, "residency-guard", "Refused by the residency guard",
                "The edge refused to forward this request outside the user's residency; it has been logged.");
            return;
        }

        await next(context);
    }

    [LoggerMessage(EventId = EventIds.ResidencyGuardTripped, Level = LogLevel.Critical, Message = "Residency guard refused a request: {Violation}")]
    private static partial void LogGuardTripped(ILogger logger, string violation);
}
