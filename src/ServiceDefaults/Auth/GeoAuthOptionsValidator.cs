using Microsoft.Extensions.Options;

namespace Geo.ServiceDefaults.Auth;

/// <summary>Fails start-up with every error of <c>Geo:Auth</c> at once, each naming the setting and how to fix it.</summary>
public sealed class GeoAuthOptionsValidator : IValidateOptions<GeoAuthOptions>
{
    private static readonly HashSet<string> Asymmetric = new(StringComparer.Ordinal)
    {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
    };

    public ValidateOptionsResult Validate(string? name, GeoAuthOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = Collect(options);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>Every error, empty when valid.</summary>
    public static List<string> Collect(GeoAuthOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        const string s = GeoAuthOptions.SectionName;
        if (!options.Enabled)
        {
            return errors;
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            errors.Add($"{s}:Audience is required: the 'aud' every token must carry (e.g. geo-api).");
        }

        if (options.Issuers.Count == 0)
        {
            errors.Add($"{s}:Issuers is empty: configure at least one issuer ({s}:Issuers:0:Issuer with Authority, MetadataAddress or SigningKeyFile), "
                + $"or run ./geo up, which creates a development issuer.");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Issuers.Count; i++)
        {
            var issuer = options.Issuers[i];
            var at = $"{s}:Issuers:{i}";
            if (string.IsNullOrWhiteSpace(issuer.Issuer))
            {
                errors.Add($"{at}:Issuer is required: the exact 'iss' of the issuer's tokens.");
            }
            else if (!seen.Add(issuer.Issuer))
            {
                errors.Add($"{at}:Issuer '{issuer.Issuer}' is configured twice.");
            }

            var discovery = !string.IsNullOrWhiteSpace(issuer.Authority) || !string.IsNullOrWhiteSpace(issuer.MetadataAddress);
            var keyFile = !string.IsNullOrWhiteSpace(issuer.SigningKeyFile);
            if (discovery == keyFile)
            {
                errors.Add($"{at}: set either Authority/MetadataAddress (OIDC discovery) or SigningKeyFile (a PEM public key), not {(discovery ? "both" : "neither")}.");
            }

            foreach (var (key, value) in new[] { ("Authority", issuer.Authority), ("MetadataAddress", issuer.MetadataAddress) })
            {
                if (string.IsNullOrWhiteSpace(value))
                {
                    continue;
                }

                if (!Uri.TryCreate(value, UriKind.Absolute, out var uri))
                {
                    errors.Add($"{at}:{key} '{value}' is not an absolute URL.");
                }
                else if (issuer.RequireHttpsMetadata && uri.Scheme != Uri.UriSchemeHttps)
                {
                    errors.Add($"{at}:{key} '{value}' is not HTTPS; use https, or set {at}:RequireHttpsMetadata=false for a local test issuer.");
                }
            }

            if (keyFile)
            {
                try
                {
                    SigningKeys.LoadPublicKey(issuer.SigningKeyFile!);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or System.Security.Cryptography.CryptographicException)
                {
                    errors.Add($"{at}:SigningKeyFile '{issuer.SigningKeyFile}' cannot be used: {e.Message}");
                }
            }
        }

        foreach (var algorithm in options.AllowedAlgorithms)
        {
            if (!Asymmetric.Contains(algorithm))
            {
                errors.Add($"{s}:Algorithms: '{algorithm}' is not allowed; use asymmetric algorithms only ({string.Join(", ", Asymmetric)}).");
            }
        }

        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{s}:ClockSkew ({options.ClockSkew}) must be between 00:00:00 and 00:05:00.");
        }

        if (options.TokenCacheSize < 0)
        {
            errors.Add($"{s}:TokenCacheSize ({options.TokenCacheSize}) must be 0 (off) or more.");
        }

        if (options.TokenCacheMaxAge <= TimeSpan.Zero || options.TokenCacheMaxAge > TimeSpan.FromHours(1))
        {
            errors.Add($"{s}:TokenCacheMaxAge ({options.TokenCacheMaxAge}) must be above 00:00:00 and at most 01:00:00.");
        }

        if (string.IsNullOrWhiteSpace(options.UserClaim))
        {
            errors.Add($"{s}:UserClaim must name a claim (default {GeoClaims.User}).");
        }

        if (string.IsNullOrWhiteSpace(options.JurisdictionsClaim))
        {
            errors.Add($"{s}:JurisdictionsClaim must name a claim (default {GeoClaims.Jurisdictions}).");
        }

        return errors;
    }
}
