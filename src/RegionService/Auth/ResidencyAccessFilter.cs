using Geo.RegionService.Directory;
using Geo.ServiceDefaults.Auth;

namespace Geo.RegionService.Auth;

/// <summary>
/// The API's own residency check for requests on one user: a service token must name the user's residency (from this
/// region's directory entry) among its jurisdictions. User tokens were settled by the token alone in
/// <see cref="AuthExtensions.UseGeoApiAccess"/>. A malformed id, an unknown user, or a directory that does not answer, is left to the
/// handler (404, 503): there is nothing to protect and nothing to reveal.
/// </summary>
internal sealed class ResidencyAccessFilter(GeoAccess access, IUserDirectory directory, Microsoft.Extensions.Options.IOptions<GeoAuthOptions> options) : IEndpointFilter
{
    private readonly string _userClaim = options.Value.UserClaim;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (!access.Enabled
            || http.User.FindFirst(_userClaim) is not null
            || GeoPolicies.Classify(http.Request.Method, http.Request.Path) is not { UserId: { } userId } request
            || !Api.RequestRules.IsUserId(userId))
        {
            return await next(context);
        }

        UserRecord? user;
        try
        {
            user = await directory.GetUserAsync(userId, http.RequestAborted);
        }
        catch (DirectoryUnavailableException)
        {
            return await next(context);
        }

        if (user is not null && !await access.AuthorizeAsync(http, request.Operation, new GeoUserResource(userId, user.Residency)))
        {
            return Results.Empty;
        }

        return await next(context);
    }
}
