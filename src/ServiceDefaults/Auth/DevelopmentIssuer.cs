using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Geo.ServiceDefaults.Auth;

/// <summary>
/// The local development issuer of <c>./geo up</c> and the tests: a P-256 key pair in two PEM files (the private key
/// readable by its owner only, never checked in), and tokens signed with it (ES256). Real deployments use an OIDC
/// issuer instead; nothing here runs in a service.
/// </summary>
public sealed class DevelopmentIssuer
{
    /// <summary><c>iss</c> of development tokens.</summary>
    public const string Issuer = "https://dev-issuer.geo.local";

    /// <summary><c>aud</c> of development tokens and of the local services.</summary>
    public const string Audience = "geo-api";

    public const string PrivateKeyFileName = "issuer.key.pem";
    public const string PublicKeyFileName = "issuer.pub.pem";

    private readonly SigningCredentials _credentials;

    private DevelopmentIssuer(SecurityKey key, string issuer, string audience)
    {
        _credentials = new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256);
        IssuerName = issuer;
        AudienceName = audience;
    }

    public string IssuerName { get; }

    public string AudienceName { get; }

    /// <summary>Creates the key pair in <paramref name="directory"/> unless it exists; returns the public key file.</summary>
    public static string EnsureKeyFiles(string directory)
    {
        Directory.CreateDirectory(directory);
        var privatePath = Path.Combine(directory, PrivateKeyFileName);
        var publicPath = Path.Combine(directory, PublicKeyFileName);
        if (File.Exists(privatePath) && File.Exists(publicPath))
        {
            return publicPath;
        }

        var (privatePem, publicPem) = SigningKeys.NewEcKeyPair();
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var writer = new StreamWriter(privatePath, System.Text.Encoding.ASCII, options))
        {
            writer.Write(privatePem);
        }

        File.WriteAllText(publicPath, publicPem);
        return publicPath;
    }

    /// <summary>The issuer whose private key is in <paramref name="directory"/>.</summary>
    public static DevelopmentIssuer Load(string directory, string issuer = Issuer, string audience = Audience)
    {
        var path = Path.Combine(directory, PrivateKeyFileName);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No development issuer key at {path}; ./geo up (or geoctl auth dev-issuer) creates it.", path);
        }

        return new DevelopmentIssuer(SigningKeys.FromPem(File.ReadAllText(path), path), issuer, audience);
    }

    /// <summary>An issuer with a key held in memory only (tests that need a second, untrusted key).</summary>
    public static DevelopmentIssuer InMemory(string privatePem, string issuer = Issuer, string audience = Audience)
        => new(SigningKeys.FromPem(privatePem, "memory"), issuer, audience);

    /// <summary>A user token bound to <paramref name="userId"/>.</summary>
    public string UserToken(string userId, TimeSpan ttl, string? subject = null)
        => Sign(new Dictionary<string, object> { [GeoClaims.User] = userId }, subject ?? "user:" + userId, ttl);

    /// <summary>A service token with <paramref name="scopes"/> acting in <paramref name="jurisdictions"/>.</summary>
    public string ServiceToken(IEnumerable<string> scopes, IEnumerable<string> jurisdictions, TimeSpan ttl, string subject = "geo-dev-service")
        => Sign(new Dictionary<string, object>
        {
            [GeoClaims.Scope] = string.Join(' ', scopes.Distinct(StringComparer.Ordinal)),
            [GeoClaims.Jurisdictions] = jurisdictions.Distinct(StringComparer.Ordinal).ToArray(),
        }, subject, ttl);

    /// <summary>A token with exactly these claims (tests of hostile tokens: wrong audience, expired, ...).</summary>
    public string Sign(IDictionary<string, object> claims, string subject, TimeSpan ttl, DateTimeOffset? now = null, string? audience = null)
    {
        ArgumentNullException.ThrowIfNull(claims);
        var issuedAt = (now ?? DateTimeOffset.UtcNow).UtcDateTime;
        var all = new Dictionary<string, object>(claims) { [GeoClaims.Subject] = subject, ["jti"] = Guid.NewGuid().ToString("N") };
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = IssuerName,
            Audience = audience ?? AudienceName,
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = issuedAt + ttl,
            Claims = all,
            SigningCredentials = _credentials,
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    /// <summary>Settings that make a service trust this issuer (public key in <paramref name="publicKeyFile"/>).</summary>
    public static IReadOnlyList<(string Key, string Value)> ServiceSettings(string publicKeyFile) =>
    [
        ($"{GeoAuthOptions.SectionName}:Audience", Audience),
        ($"{GeoAuthOptions.SectionName}:Issuers:0:Issuer", Issuer),
        ($"{GeoAuthOptions.SectionName}:Issuers:0:SigningKeyFile", publicKeyFile),
    ];
}
