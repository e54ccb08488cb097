using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Geo.ServiceDefaults.Auth;

namespace Geo.Testing.Services;

/// <summary>
/// The credentials of a test run, in one place: a development issuer made once per test process (its key in a temp
/// folder) that every <see cref="ServiceProcess"/> trusts unless a test configures <c>Geo:Auth</c> itself, and HTTP
/// clients that carry a token by default. Tests that are not about security use <see cref="CreateClient"/> and never
/// see a token; security tests mint their own with <see cref="Issuer"/>.
/// </summary>
public static class TestCredentials
{
    private static readonly Lazy<(DevelopmentIssuer Issuer, string PublicKeyFile)> Trusted = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("geo-test-issuer-").FullName;
        var publicKey = DevelopmentIssuer.EnsureKeyFiles(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return (DevelopmentIssuer.Load(dir), publicKey);
    });

    /// <summary>The issuer every test service trusts.</summary>
    public static DevelopmentIssuer Issuer => Trusted.Value.Issuer;

    /// <summary>Its public key file (<c>Geo:Auth:Issuers:0:SigningKeyFile</c>).</summary>
    public static string PublicKeyFile => Trusted.Value.PublicKeyFile;

    /// <summary>The <c>Geo:Auth</c> settings that make a service trust <see cref="Issuer"/>.</summary>
    public static IReadOnlyList<(string Key, string Value)> ServiceSettings => DevelopmentIssuer.ServiceSettings(PublicKeyFile);

    private static readonly Lazy<string> LogKey = new(() =>
    {
        var key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        Geo.Core.Logging.UserLogName.Configure(key); // the test process names users as the services do
        return Convert.ToBase64String(key);
    });

    /// <summary>
    /// The run's <c>Geo:Logging:UserHashKey</c> (base64), given to every <see cref="ServiceProcess"/>; reading it also keys
    /// this process's <see cref="Geo.Core.Logging.UserLogName"/>, so a test can look for a user's hash in the logs.
    /// </summary>
    public static string UserHashKey => LogKey.Value;

    /// <summary>Every residency of the local topology (its jurisdictions and <c>global</c>).</summary>
    public static IReadOnlyList<string> AllJurisdictions { get; } = LoadJurisdictions();

    /// <summary>A service token with every scope and every jurisdiction: what the harness sends by default.</summary>
    public static string ServiceToken(TimeSpan? ttl = null, string subject = "geo-test-harness")
        => Issuer.ServiceToken(GeoScopes.All, AllJurisdictions, ttl ?? TimeSpan.FromHours(1), subject);

    /// <summary>A service token with exactly these scopes and jurisdictions.</summary>
    public static string ServiceToken(IEnumerable<string> scopes, IEnumerable<string> jurisdictions, TimeSpan? ttl = null, string subject = "geo-test-service")
        => Issuer.ServiceToken(scopes, jurisdictions, ttl ?? TimeSpan.FromHours(1), subject);

    /// <summary>A user token bound to <paramref name="userId"/>.</summary>
    public static string UserToken(string userId, TimeSpan? ttl = null) => Issuer.UserToken(userId, ttl ?? TimeSpan.FromHours(1));

    /// <summary>
    /// The one way a test makes an HTTP client for a service: its requests carry a bearer token unless they set
    /// <c>Authorization</c> themselves — by default the harness's all-scopes service token (renewed before it expires),
    /// else the one <paramref name="token"/> gives — and it presents <paramref name="certificate"/> (default: the
    /// harness's client certificate), so what a test shows about certificates is never a missing token. HTTP/2 exactly
    /// when <paramref name="http2"/>.
    /// </summary>
    public static HttpClient CreateClient(Uri? baseAddress = null, TimeSpan? timeout = null, Func<string>? token = null,
        Geo.Core.Tls.TlsCredentials? certificate = null, bool http2 = false)
    {
        var client = new HttpClient(WithBearer(Security.TestPki.Handler(certificate), token))
        {
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
        };
        if (baseAddress is not null)
        {
            client.BaseAddress = baseAddress;
        }

        if (http2)
        {
            client.DefaultRequestVersion = System.Net.HttpVersion.Version20;
            client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        }

        return client;
    }

    /// <summary>Wraps <paramref name="inner"/> so every request carries the default (or the given) bearer token.</summary>
    public static DelegatingHandler WithBearer(HttpMessageHandler inner, Func<string>? token = null)
        => new BearerTokenHandler(token ?? DefaultToken) { InnerHandler = inner };

    /// <summary>A client that sends no bearer token (tests of anonymous endpoints and of refusals); it still presents the harness TLS certificate.</summary>
    public static HttpClient CreateAnonymousClient(Uri? baseAddress = null, TimeSpan? timeout = null)
        => new(Security.TestPki.Handler()) { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(30) };

    private static readonly object Gate = new();
    private static (string Token, DateTime Renew)? _default;

    private static string DefaultToken()
    {
        lock (Gate)
        {
            if (_default is not { } current || DateTime.UtcNow >= current.Renew)
            {
                _default = (ServiceToken(TimeSpan.FromHours(1)), DateTime.UtcNow.AddMinutes(50));
            }

            return _default.Value.Token;
        }
    }

    private static List<string> LoadJurisdictions()
    {
        var topology = JsonNode.Parse(File.ReadAllText(Path.Combine(ServiceProcess.RepositoryRoot(), "config", "topology.local.json")))!;
        var jurisdictions = topology["regions"]!.AsObject().Select(r => (string)r.Value!["jurisdiction"]!).Distinct(StringComparer.Ordinal).ToList();
        jurisdictions.Add("global");
        return jurisdictions;
    }

    private sealed class BearerTokenHandler(Func<string> token) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Authorization ??= new AuthenticationHeaderValue("Bearer", token());
            return base.SendAsync(request, cancellationToken);
        }
    }
}
