using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;

namespace Geo.ServiceDefaults.Auth;

/// <summary>What a public API request does, for authorization.</summary>
public enum GeoOperation
{
    Read,
    Write,
    Erase,
    CreateUser,
    Admin,
}

/// <summary>The user a request acts on; <see cref="Residency"/> is null until the directory entry (or create body) is known.</summary>
public sealed record GeoUserResource(string? UserId, string? Residency);

/// <summary>The policy requirement of one operation; <see cref="GeoAccessHandler"/> decides it.</summary>
public sealed class GeoAccessRequirement(GeoOperation operation) : IAuthorizationRequirement
{
    public GeoOperation Operation { get; } = operation;
}

/// <summary>Why a request was refused: the stable problem slug and a sentence for the caller.</summary>
public sealed class GeoAccessFailure(IAuthorizationHandler handler, string slug, string message, string? missingScope = null)
    : AuthorizationFailureReason(handler, message)
{
    public string Slug { get; } = slug;

    public string? MissingScope { get; } = missingScope;
}

/// <summary>Policy names, the route → operation table, and the scope each operation needs.</summary>
public static class GeoPolicies
{
    public const string Read = GeoScopes.Read;
    public const string Write = GeoScopes.Write;
    public const string Erase = GeoScopes.Erase;
    public const string CreateUser = GeoScopes.UsersCreate;
    public const string Admin = GeoScopes.Admin;

    public static string For(GeoOperation operation) => ScopeOf(operation);

    public static string ScopeOf(GeoOperation operation) => operation switch
    {
        GeoOperation.Read => GeoScopes.Read,
        GeoOperation.Write => GeoScopes.Write,
        GeoOperation.Erase => GeoScopes.Erase,
        GeoOperation.CreateUser => GeoScopes.UsersCreate,
        _ => GeoScopes.Admin,
    };

    /// <summary>
    /// The operation and target user of a <c>/v1/users…</c> request (docs/architecture.md §4), or null for a path outside
    /// the API (health, metrics, OpenAPI). An unknown <c>/v1</c> path is a read with no user: it needs a valid token.
    /// </summary>
    public static (GeoOperation Operation, string? UserId)? Classify(string method, PathString path)
    {
        if (!path.StartsWithSegments("/v1", StringComparison.Ordinal, out var afterV1))
        {
            return null;
        }

        if (!afterV1.StartsWithSegments("/users", StringComparison.Ordinal, out var rest))
        {
            return (GeoOperation.Read, null);
        }

        var segments = (rest.Value ?? string.Empty).Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0)
        {
            return (HttpMethods.IsPost(method) ? GeoOperation.CreateUser : GeoOperation.Read, null);
        }

        var userId = segments[0];
        if (segments.Length == 1)
        {
            return (HttpMethods.IsDelete(method) ? GeoOperation.Erase : HttpMethods.IsGet(method) || HttpMethods.IsHead(method) ? GeoOperation.Read : GeoOperation.Write, userId);
        }

        return (HttpMethods.IsGet(method) || HttpMethods.IsHead(method) ? GeoOperation.Read : GeoOperation.Write, userId);
    }
}

/// <summary>
/// The one decision of docs/security.md for every operation. A <b>user token</b> (it carries the user claim) may read
/// and write the one user it names, and nothing else; an id other than its own is refused from the token alone (403,
/// whether or not that user exists). A <b>service token</b> needs the operation's scope, and, once the user's
/// residency is known, that residency among its jurisdictions. Admin needs <c>geo.admin</c>.
/// </summary>
public sealed class GeoAccessHandler(Microsoft.Extensions.Options.IOptions<GeoAuthOptions> options) : AuthorizationHandler<GeoAccessRequirement>
{
    private readonly GeoAuthOptions _options = options.Value;

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, GeoAccessRequirement requirement)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(requirement);
        var resource = context.Resource as GeoUserResource ?? new GeoUserResource(null, null);
        var failure = Check(context.User, requirement.Operation, resource);
        if (failure is null)
        {
            context.Succeed(requirement);
        }
        else
        {
            context.Fail(failure);
        }

        return Task.CompletedTask;
    }

    private GeoAccessFailure? Check(ClaimsPrincipal principal, GeoOperation operation, GeoUserResource resource)
    {
        if (principal.Identity?.IsAuthenticated != true)
        {
            return new GeoAccessFailure(this, "unauthenticated", "A bearer token is required.");
        }

        var scopes = Scopes(principal);
        var boundUser = principal.FindFirst(_options.UserClaim)?.Value;
        if (boundUser is not null)
        {
            if (operation is GeoOperation.CreateUser or GeoOperation.Admin)
            {
                return new GeoAccessFailure(this, "user-token-not-allowed", "A user token cannot create users or administer; use a service token.");
            }

            if (!string.Equals(resource.UserId, boundUser, StringComparison.Ordinal))
            {
                return new GeoAccessFailure(this, "other-user", "This token is bound to another user.");
            }

            // Reads and writes of its own user need nothing more; erasing it needs the erase scope even so.
            return operation == GeoOperation.Erase && !scopes.Contains(GeoScopes.Erase)
                ? new GeoAccessFailure(this, "insufficient-scope", $"Erasing a user needs the scope {GeoScopes.Erase}.", GeoScopes.Erase)
                : null;
        }

        var needed = GeoPolicies.ScopeOf(operation);
        if (!scopes.Contains(needed))
        {
            return new GeoAccessFailure(this, "insufficient-scope", $"This operation needs the scope {needed}.", needed);
        }

        if (resource.Residency is { } residency && operation != GeoOperation.Admin && !Jurisdictions(principal).Contains(residency))
        {
            return new GeoAccessFailure(this, "jurisdiction-not-allowed", $"This token may not act on users of residency '{residency}'.");
        }

        return null;
    }

    /// <summary><c>scope</c> (space-separated, or a JSON array), Entra ID's <c>scp</c>, and app <c>roles</c>.</summary>
    public static HashSet<string> Scopes(ClaimsPrincipal principal)
    {
        ArgumentNullException.ThrowIfNull(principal);
        var scopes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var claim in principal.Claims)
        {
            if (claim.Type is GeoClaims.Scope or "scp" or "roles")
            {
                scopes.UnionWith(claim.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries));
            }
        }

        return scopes;
    }

    private HashSet<string> Jurisdictions(ClaimsPrincipal principal)
    {
        var jurisdictions = new HashSet<string>(StringComparer.Ordinal);
        foreach (var claim in principal.FindAll(_options.JurisdictionsClaim))
        {
            jurisdictions.UnionWith(claim.Value.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries));
        }

        return jurisdictions;
    }
}
