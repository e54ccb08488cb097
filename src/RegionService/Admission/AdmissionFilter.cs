using Geo.Core.Topology;
using Geo.RegionService.Api;
using Geo.RegionService.Directory;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Geo.RegionService.Admission;

/// <summary>
/// Admission of a request on one user (docs/architecture.md §4): the user is looked up in this region's directory
/// (404 when the id is not canonical or unknown, 503 when the directory does not answer), the placement headers are
/// set, and a user whose residency excludes this region is refused (421). The handler finds the admitted user with
/// <see cref="AdmittedUser.Of"/>. Runs after the request's own checks (<see cref="RequestChecks"/>).
/// </summary>
internal sealed class AdmissionFilter(GeoTopology topology, IOptions<RegionServiceOptions> options, IUserDirectory directory, ILogger<AdmissionFilter> logger)
    : IEndpointFilter
{
    private readonly string _region = options.Value.Region;

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var userId = RequestChecks.Route(http, "userId");
        if (!RequestRules.IsUserId(userId))
        {
            return RegionProblems.UserNotFound(userId);
        }

        UserRecord? user;
        try
        {
            user = await directory.GetUserAsync(userId, http.RequestAborted);
        }
        catch (DirectoryUnavailableException ex)
        {
            return logger.DirectoryDown(ex);
        }

        if (user is null)
        {
            return RegionProblems.UserNotFound(userId);
        }

        ApiHeaders.SetUser(http, user.HomeRegion, _region);
        if (!topology.IsAllowed(user.Residency, _region))
        {
            return RegionProblems.RegionNotAllowed(_region, user.Residency, topology.AllowedRegions(user.Residency));
        }

        http.Features.Set(new AdmittedUser(user));
        return await next(context);
    }
}

/// <summary>The user <see cref="AdmissionFilter"/> admitted for this request.</summary>
internal sealed record AdmittedUser(UserRecord User)
{
    public static UserRecord Of(HttpContext http) => http.Features.GetRequiredFeature<AdmittedUser>().User;
}

internal static class AdmissionExtensions
{
    /// <summary>Admits the request's user (the <see cref="AdmissionFilter"/> singleton) before the handler runs.</summary>
    public static RouteHandlerBuilder Admit(this RouteHandlerBuilder endpoint)
        => endpoint.AddEndpointFilterFactory((factory, next) =>
        {
            var filter = factory.ApplicationServices.GetRequiredService<AdmissionFilter>();
            return context => filter.InvokeAsync(context, next);
        });
}
