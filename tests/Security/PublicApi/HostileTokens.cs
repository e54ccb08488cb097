using System.Security.Cryptography;
using System.Text;
using Geo.ServiceDefaults.Auth;
using Geo.Testing.Services;

namespace Geo.Security.Tests.PublicApi;

/// <summary>Tokens a hostile caller would try; each otherwise carries every scope and jurisdiction.</summary>
internal static class HostileTokens
{
    private static readonly DevelopmentIssuer OtherKey = DevelopmentIssuer.InMemory(SigningKeys.NewEcKeyPair().PrivatePem);
    private static readonly DevelopmentIssuer OtherIssuer = DevelopmentIssuer.InMemory(
        File.ReadAllText(Path.Combine(Path.GetDirectoryName(TestCredentials.PublicKeyFile)!, DevelopmentIssuer.PrivateKeyFileName)), issuer: "https://evil.example");

    public static readonly string[] Names =
    [
        "missing", "garbage", "expired", "not-yet-valid", "no-expiry", "wrong-issuer", "wrong-audience", "alg-none", "other-key", "hs256-with-public-key",
    ];

    private static Dictionary<string, object> AllRights() => new()
    {
        [GeoClaims.Scope] = string.Join(' ', GeoScopes.All),
        [GeoClaims.Jurisdictions] = TestCredentials.AllJurisdictions.ToArray(),
    };

    /// <summary>The token of <paramref name="name"/>; null for no Authorization header at all.</summary>
    public static string? Create(string name) => name switch
    {
        "missing" => null,
        "garbage" => "not-a-jwt",
        "expired" => TestCredentials.Issuer.Sign(AllRights(), "attacker", TimeSpan.FromMinutes(5), now: DateTimeOffset.UtcNow.AddHours(-1)),
        "not-yet-valid" => NotYetValid(),
        "no-expiry" => Unsigned(AllRights(), withExpiry: false, sign: true),
        "wrong-issuer" => OtherIssuer.Sign(AllRights(), "attacker", TimeSpan.FromMinutes(5)),
        "wrong-audience" => TestCredentials.Issuer.Sign(AllRights(), "attacker", TimeSpan.FromMinutes(5), audience: "some-other-api"),
        "alg-none" => Unsigned(AllRights(), withExpiry: true, sign: false),
        "other-key" => OtherKey.Sign(AllRights(), "attacker", TimeSpan.FromMinutes(5)),
        "hs256-with-public-key" => Hs256WithPublicKey(),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    private static string NotYetValid()
    {
        // nbf and iat an hour ahead, well beyond the clock skew.
        return TestCredentials.Issuer.Sign(AllRights(), "attacker", TimeSpan.FromHours(2), now: DateTimeOffset.UtcNow.AddHours(1));
    }

    /// <summary>A hand-built token: <c>alg: none</c> with an empty signature, or ES256 by the trusted key without <c>exp</c>.</summary>
    private static string Unsigned(Dictionary<string, object> claims, bool withExpiry, bool sign)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var payload = new Dictionary<string, object>(claims)
        {
            ["iss"] = DevelopmentIssuer.Issuer,
            ["aud"] = DevelopmentIssuer.Audience,
            ["sub"] = "attacker",
            ["iat"] = now,
            ["nbf"] = now,
        };
        if (withExpiry)
        {
            payload["exp"] = now + 300;
        }

        var header = sign ? "{\"alg\":\"ES256\",\"typ\":\"JWT\"}" : "{\"alg\":\"none\",\"typ\":\"JWT\"}";
        var signingInput = B64(Encoding.UTF8.GetBytes(header)) + "." + B64(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(payload));
        if (!sign)
        {
            return signingInput + ".";
        }

        using var ec = ECDsa.Create();
        ec.ImportFromPem(File.ReadAllText(Path.Combine(Path.GetDirectoryName(TestCredentials.PublicKeyFile)!, DevelopmentIssuer.PrivateKeyFileName)));
        var signature = ec.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return signingInput + "." + B64(signature);
    }

    /// <summary>The classic confusion attack: HMAC-SHA256 keyed with the issuer's public key PEM.</summary>
    private static string Hs256WithPublicKey()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var payload = new Dictionary<string, object>(AllRights())
        {
            ["iss"] = DevelopmentIssuer.Issuer, ["aud"] = DevelopmentIssuer.Audience, ["sub"] = "attacker", ["iat"] = now, ["nbf"] = now, ["exp"] = now + 300,
        };
        var signingInput = B64(Encoding.UTF8.GetBytes("{\"alg\":\"HS256\",\"typ\":\"JWT\"}")) + "." + B64(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(payload));
        var mac = HMACSHA256.HashData(File.ReadAllBytes(TestCredentials.PublicKeyFile), Encoding.ASCII.GetBytes(signingInput));
        return signingInput + "." + B64(mac);
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
