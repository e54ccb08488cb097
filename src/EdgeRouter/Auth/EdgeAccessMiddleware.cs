using Geo.EdgeRouter.Routing;
using Geo.ServiceDefaults.Auth;

namespace Geo.EdgeRouter.Auth;

/// <summary>
/// The edge's residency check, right after routing found the user's residency (or read it from a create body): a
/// service token must name that residency among its jurisdictions. The token-only checks (valid token, its user, its
/// scopes) ran before the rate limiter's neighbour, <see cref="AuthExtensions.UseGeoApiAccess"/>; the RegionService
/// repeats all of them.
/// </summary>
internal sealed class EdgeAccessMiddleware(RequestDelegate next, GeoAccess access)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (access.Enabled
            && GeoPolicies.Classify(context.Request.Method, context.Request.Path) is { } request
            && context.Features.Get<RoutedRequest>() is { } routed
            && !await access.AuthorizeAsync(context, request.Operation, new GeoUserResource(request.UserId, routed.Residency)))
        {
            return;
        }

        await next(context);
    }
}
