namespace Geo.ServiceDefaults.Auth;

/// <summary>
/// Who may call the public API (section <c>Geo:Auth</c>, read by the EdgeRouter and the RegionService): the issuers whose
/// bearer JWTs are accepted, the audience they must name, the signing algorithms allowed, and the claims that carry a
/// token's user, scopes and jurisdictions. See docs/security.md.
/// </summary>
public sealed class GeoAuthOptions
{
    public const string SectionName = "Geo:Auth";

    /// <summary>Algorithms accepted when <see cref="Algorithms"/> is not set: asymmetric signatures only.</summary>
    public static readonly IReadOnlyList<string> DefaultAlgorithms = ["RS256", "PS256", "ES256"];

    /// <summary>
    /// False switches authentication and authorization off (every caller is allowed). Only for measuring the cost of
    /// authentication; the service logs a critical line at start-up when it is off. Default true.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The <c>aud</c> every token must carry (e.g. <c>geo-api</c>, or the API's client id in Entra ID).</summary>
    public string Audience { get; set; } = string.Empty;

    /// <summary>The trusted issuers; a token is validated against the one its <c>iss</c> names.</summary>
    public List<GeoIssuerOptions> Issuers { get; set; } = [];

    /// <summary>Allowed <c>alg</c> values; unset means <see cref="DefaultAlgorithms"/>. <c>none</c> and HMAC are never allowed.</summary>
    public string[]? Algorithms { get; set; }

    /// <summary>Tolerance for the lifetime checks (<c>exp</c>, <c>nbf</c>) against clock drift. Default 30 s.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How many fully validated tokens each issuer's scheme remembers, so a repeated token skips the signature check
    /// (<see cref="ValidatedTokenCache"/>). 0 switches the cache off. Default 10,000.
    /// </summary>
    public int TokenCacheSize { get; set; } = 10_000;

    /// <summary>The longest a validated token is served from memory before it is validated again (never past its <c>exp</c>). Default 5 min.</summary>
    public TimeSpan TokenCacheMaxAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Claim naming the Geo user a user token is bound to. Default <c>geo_user</c>.</summary>
    public string UserClaim { get; set; } = GeoClaims.User;

    /// <summary>Claim listing a service token's jurisdictions (residencies it may act on). Default <c>geo_jurisdictions</c>.</summary>
    public string JurisdictionsClaim { get; set; } = GeoClaims.Jurisdictions;

    /// <summary>The algorithms in force.</summary>
    public IReadOnlyList<string> AllowedAlgorithms => Algorithms is { Length: > 0 } configured ? configured : DefaultAlgorithms;
}

/// <summary>One trusted token issuer (an element of <c>Geo:Auth:Issuers</c>).</summary>
public sealed class GeoIssuerOptions
{
    /// <summary>The exact <c>iss</c> of its tokens.</summary>
    public string Issuer { get; set; } = string.Empty;

    /// <summary>OIDC authority: keys come from <c>{Authority}/.well-known/openid-configuration</c> (Entra ID, Auth0, Keycloak, Cognito).</summary>
    public string? Authority { get; set; }

    /// <summary>Explicit OIDC discovery document URL, when it is not under the authority.</summary>
    public string? MetadataAddress { get; set; }

    /// <summary>PEM public key (RSA or EC) that verifies its tokens: the local development issuer, or a fixed key.</summary>
    public string? SigningKeyFile { get; set; }

    /// <summary>Refuse discovery over plain HTTP. Default true.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;
}

/// <summary>Claim names and values of Geo's tokens.</summary>
public static class GeoClaims
{
    public const string User = "geo_user";
    public const string Jurisdictions = "geo_jurisdictions";
    public const string Subject = "sub";

    /// <summary>Space-separated scopes (RFC 8693 <c>scope</c>); Entra ID's <c>scp</c> and <c>roles</c> are read too.</summary>
    public const string Scope = "scope";
}

/// <summary>The scopes of the public API.</summary>
public static class GeoScopes
{
    public const string Read = "geo.read";
    public const string Write = "geo.write";
    public const string Erase = "geo.erase";
    public const string UsersCreate = "geo.users.create";
    public const string Admin = "geo.admin";

    /// <summary>Every scope, as a development service token with <c>--scope</c> for all of them carries.</summary>
    public static readonly IReadOnlyList<string> All = [Read, Write, Erase, UsersCreate, Admin];
}
