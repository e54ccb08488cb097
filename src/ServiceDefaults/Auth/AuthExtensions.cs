using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Geo.ServiceDefaults.Auth;

/// <summary>
/// Bearer-JWT authentication and the access policies of the public API, shared by the EdgeRouter and the
/// RegionService (each validates every request itself). See docs/security.md.
/// </summary>
public static partial class AuthExtensions
{
    /// <summary>The scheme that picks the issuer's own JwtBearer scheme from the token's <c>iss</c>.</summary>
    public const string Scheme = "Bearer";

    private const string IssuerSchemePrefix = "geo-issuer-";

    /// <summary>
    /// Binds and validates <c>Geo:Auth</c>, registers one JwtBearer scheme per configured issuer (OIDC discovery or a
    /// key file) behind a selector scheme, the policies <c>geo.read</c>, <c>geo.write</c>, <c>geo.erase</c>,
    /// <c>geo.users.create</c>, <c>geo.admin</c>, and <see cref="GeoAccessHandler"/>.
    /// </summary>
    public static TBuilder AddGeoAuthentication<TBuilder>(this TBuilder builder)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<GeoAuthOptions>().BindConfiguration(GeoAuthOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<GeoAuthOptions>, GeoAuthOptionsValidator>();

        // The schemes are registered from configuration as read now; a bad configuration still fails start-up through
        // the validator above (ValidateOnStart), with every error listed.
        var configured = new GeoAuthOptions();
        builder.Configuration.GetSection(GeoAuthOptions.SectionName).Bind(configured);
        var authentication = services.AddAuthentication(Scheme);
        authentication.AddPolicyScheme(Scheme, "Geo bearer token", o => o.ForwardDefaultSelector = SelectIssuerScheme(configured));
        for (var i = 0; i < Math.Max(1, configured.Issuers.Count); i++)
        {
            var index = i;
            authentication.AddJwtBearer(IssuerSchemePrefix + index, o => Configure(o, configured, index));
        }

        services.AddAuthorizationBuilder()
            .AddPolicy(GeoPolicies.Read, p => p.AddAuthenticationSchemes(Scheme).AddRequirements(new GeoAccessRequirement(GeoOperation.Read)))
            .AddPolicy(GeoPolicies.Write, p => p.AddAuthenticationSchemes(Scheme).AddRequirements(new GeoAccessRequirement(GeoOperation.Write)))
            .AddPolicy(GeoPolicies.Erase, p => p.AddAuthenticationSchemes(Scheme).AddRequirements(new GeoAccessRequirement(GeoOperation.Erase)))
            .AddPolicy(GeoPolicies.CreateUser, p => p.AddAuthenticationSchemes(Scheme).AddRequirements(new GeoAccessRequirement(GeoOperation.CreateUser)))
            .AddPolicy(GeoPolicies.Admin, p => p.AddAuthenticationSchemes(Scheme).AddRequirements(new GeoAccessRequirement(GeoOperation.Admin)));
        services.AddSingleton<IAuthorizationHandler, GeoAccessHandler>();
        services.AddSingleton<GeoAccess>();
        return builder;
    }

    /// <summary>Authenticates every request that carries a token (sets <c>HttpContext.User</c>); refuses nothing by itself.</summary>
    public static WebApplication UseGeoAuthentication(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (!app.Services.GetRequiredService<GeoAccess>().Enabled)
        {
            LogDisabled(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Geo.Auth"));
            return app;
        }

        app.UseAuthentication();
        return app;
    }

    /// <summary>
    /// Refuses <c>/v1</c> requests without a valid token (401 + WWW-Authenticate) or whose token alone cannot allow them
    /// (403: another user, missing scope). Health, metrics and OpenAPI stay anonymous. The residency check, which needs
    /// the user's directory entry, follows in each service through <see cref="GeoAccess"/>.
    /// </summary>
    public static WebApplication UseGeoApiAccess(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var access = app.Services.GetRequiredService<GeoAccess>();
        if (!access.Enabled)
        {
            return app;
        }

        app.Use(async (context, next) =>
        {
            if (GeoPolicies.Classify(context.Request.Method, context.Request.Path) is not { } request)
            {
                await next(context);
                return;
            }

            if (context.User.Identity?.IsAuthenticated != true)
            {
                await context.ChallengeAsync(Scheme);
                return;
            }

            if (await access.AuthorizeAsync(context, request.Operation, new GeoUserResource(request.UserId, null)))
            {
                await next(context);
            }
        });
        return app;
    }

    private static Func<HttpContext, string?> SelectIssuerScheme(GeoAuthOptions configured)
    {
        var byIssuer = configured.Issuers.Select((issuer, i) => (issuer.Issuer, Scheme: IssuerSchemePrefix + i))
            .GroupBy(e => e.Issuer, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Scheme, StringComparer.Ordinal);
        var handler = new JsonWebTokenHandler();
        return context =>
        {
            var header = context.Request.Headers.Authorization.ToString();
            if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                var token = header[7..].Trim();
                if (handler.CanReadToken(token))
                {
                    try
                    {
                        // Only to choose whose keys validate it; the chosen scheme validates everything, the issuer included.
                        if (byIssuer.TryGetValue(handler.ReadJsonWebToken(token).Issuer, out var scheme))
                        {
                            return scheme;
                        }
                    }
                    catch (ArgumentException)
                    {
                    }
                }
            }

            return IssuerSchemePrefix + 0;
        };
    }

    private static void Configure(JwtBearerOptions o, GeoAuthOptions configured, int index)
    {
        var issuer = index < configured.Issuers.Count ? configured.Issuers[index] : new GeoIssuerOptions { Issuer = "unconfigured" };
        o.MapInboundClaims = false;
        o.RequireHttpsMetadata = issuer.RequireHttpsMetadata;
        o.Authority = string.IsNullOrWhiteSpace(issuer.Authority) ? null : issuer.Authority;
        if (!string.IsNullOrWhiteSpace(issuer.MetadataAddress))
        {
            o.MetadataAddress = issuer.MetadataAddress;
        }

        o.Audience = configured.Audience;
        o.TokenValidationParameters = new TokenValidationParameters
        {
            ValidateIssuer = true,
            ValidIssuer = issuer.Issuer,
            ValidateAudience = true,
            ValidAudience = configured.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ValidAlgorithms = configured.AllowedAlgorithms,
            ClockSkew = configured.ClockSkew,
            NameClaimType = GeoClaims.Subject,
        };
        if (!string.IsNullOrWhiteSpace(issuer.SigningKeyFile) && File.Exists(issuer.SigningKeyFile))
        {
            try
            {
                o.TokenValidationParameters.IssuerSigningKey = SigningKeys.LoadPublicKey(issuer.SigningKeyFile);
            }
            catch (Exception e) when (e is ArgumentException or System.Security.Cryptography.CryptographicException)
            {
                // Reported by GeoAuthOptionsValidator at start-up.
            }
        }

        if (configured.TokenCacheSize > 0)
        {
            var handlers = o.TokenHandlers.ToList();
            o.TokenHandlers.Clear();
            foreach (var handler in handlers)
            {
                // The system clock, as the wrapped handler's own lifetime check uses.
                o.TokenHandlers.Add(new ValidatedTokenCache(handler, TimeProvider.System, configured.TokenCacheSize, configured.TokenCacheMaxAge));
            }
        }

        o.Events = new JwtBearerEvents
        {
            OnChallenge = async context =>
            {
                context.HandleResponse();
                var invalid = context.AuthenticateFailure is not null;
                var description = invalid ? Describe(context.AuthenticateFailure!) : null;
                context.Response.Headers.WWWAuthenticate = invalid
                    ? $"Bearer realm=\"geo\", error=\"invalid_token\", error_description=\"{description}\""
                    : "Bearer realm=\"geo\"";
                await GeoProblems.WriteAsync(context.HttpContext, StatusCodes.Status401Unauthorized,
                    invalid ? "invalid-token" : "unauthenticated",
                    invalid ? "Invalid token" : "Authentication required",
                    invalid ? $"The bearer token was refused: {description}." : "Send a bearer token: Authorization: Bearer <token>.");
            },
        };
    }

    // A sentence for the caller without echoing the token or internals.
    private static string Describe(Exception failure) => failure switch
    {
        SecurityTokenExpiredException => "the token has expired",
        SecurityTokenNotYetValidException => "the token is not valid yet",
        SecurityTokenInvalidAudienceException => "the token is for another audience",
        SecurityTokenInvalidIssuerException => "the token's issuer is not trusted",
        SecurityTokenInvalidAlgorithmException => "the token's signing algorithm is not allowed",
        SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException => "the token's signature does not verify",
        SecurityTokenNoExpirationException => "the token has no expiry",
        _ => "the token is malformed or unsigned",
    };

    [LoggerMessage(EventId = EventIds.AuthDisabled, Level = LogLevel.Critical, Message = "Geo:Auth:Enabled is false: the public API accepts every caller. Never run like this outside a benchmark.")]
    private static partial void LogDisabled(ILogger logger);
}

/// <summary>
/// Runs a policy with a <see cref="GeoUserResource"/> and, when it refuses, answers 403 problem+json itself. Services
/// call it once the user's residency is known (edge: after the directory lookup; API: from its directory entry).
/// </summary>
public sealed class GeoAccess(IAuthorizationService authorization, IOptions<GeoAuthOptions> options)
{
    public bool Enabled { get; } = options.Value.Enabled;

    /// <summary>True when allowed; otherwise the 403 has been written and the caller must stop.</summary>
    public async Task<bool> AuthorizeAsync(HttpContext context, GeoOperation operation, GeoUserResource resource)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!Enabled)
        {
            return true;
        }

        var result = await authorization.AuthorizeAsync(context.User, resource, GeoPolicies.For(operation));
        if (result.Succeeded)
        {
            return true;
        }

        var reason = result.Failure?.FailureReasons.OfType<GeoAccessFailure>().FirstOrDefault();
        if (reason?.MissingScope is { } scope)
        {
            context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"geo\", error=\"insufficient_scope\", scope=\"{scope}\"";
        }

        await GeoProblems.WriteAsync(context, StatusCodes.Status403Forbidden, reason?.Slug ?? "forbidden", "Forbidden",
            reason?.Message ?? "This token does not allow this request.");
        return false;
    }
}
