using Geo.Core.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Geo.ServiceDefaults.Tls;

/// <summary>Who may connect to a service's port.</summary>
public enum TlsListener
{
    /// <summary>Internal endpoint: clients present a certificate chained to the CA (checked at the handshake).</summary>
    Internal,

    /// <summary>The edge's public endpoint: HTTPS with a server certificate, no client certificate asked.</summary>
    Public,
}

/// <summary>Mutual TLS for a Geo service: Kestrel, the request gate, and the client side for its outbound calls.</summary>
public static class TlsExtensions
{
    /// <summary>
    /// Binds and validates <see cref="TlsOptions"/> (start-up fails without them), registers <see cref="TlsCredentials"/>,
    /// makes every HTTPS endpoint serve this service's certificate with HTTP/1.1 and HTTP/2 (ALPN), and for
    /// <see cref="TlsListener.Internal"/> asks for a client certificate and refuses, at the handshake, any that does
    /// not chain to the CA. Requests other than <c>/healthz/*</c> then need an identity: gRPC calls are checked by
    /// <see cref="PeerAuthorizationInterceptor"/> (register it with <c>AddGrpc</c>); other requests must come from one
    /// of <paramref name="httpRoles"/> (any role when empty), else 401/403 problem+json.
    /// </summary>
    /// <param name="builder">The service's builder.</param>
    /// <param name="role">The role this service runs as; its certificate must name it.</param>
    /// <param name="listener">Internal (mutual TLS) or public (server TLS only).</param>
    /// <param name="httpRoles">Roles allowed for non-gRPC requests on an internal listener.</param>
    public static TBuilder AddGeoTls<TBuilder>(this TBuilder builder, string role, TlsListener listener, params string[] httpRoles)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;
        services.AddOptions<TlsOptions>().BindConfiguration(TlsOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TlsOptions>>(new TlsOptionsValidator(role));
        services.AddSingleton(sp => Load(sp.GetRequiredService<IOptions<TlsOptions>>().Value));
        services.AddSingleton<PeerMetrics>();
        services.AddSingleton<PeerAuthorizationInterceptor>();
        services.Configure<KestrelServerOptions>(k =>
        {
            k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http1AndHttp2);
            k.ConfigureHttpsDefaults(https =>
            {
                var credentials = k.ApplicationServices.GetRequiredService<TlsCredentials>();
                https.ServerCertificate = credentials.Certificate;
                https.CheckCertificateRevocation = false;
                if (listener == TlsListener.Internal)
                {
                    https.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                    https.ClientCertificateValidation = (certificate, _, _) => credentials.IsTrusted(certificate, TlsPurpose.Client);
                }
                else
                {
                    https.ClientCertificateMode = ClientCertificateMode.NoCertificate;
                }
            });
        });

        if (listener == TlsListener.Internal)
        {
            services.AddSingleton<IStartupFilter>(new PeerGate(httpRoles));
        }

        return builder;
    }

    private static TlsCredentials Load(TlsOptions o)
        => TlsCredentials.FromPem(Pem(o.Ca, o.CaFile), Pem(o.Certificate, o.CertificateFile), Pem(o.Key, o.KeyFile));

    private static string Pem(string? text, string? file) => !string.IsNullOrWhiteSpace(text) ? text : File.ReadAllText(file!);

    /// <summary>The first middleware of an internal service: non-gRPC requests other than health need a peer identity.</summary>
    private sealed class PeerGate(string[] roles) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (context.Request.Path.StartsWithSegments("/healthz", StringComparison.Ordinal)
                    || context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true)
                {
                    await nextMiddleware(context);
                    return;
                }

                var identities = PeerAccess.Identities(context);
                if (identities.Count == 0)
                {
                    await RefuseAsync(context, StatusCodes.Status401Unauthorized, "client-certificate-required",
                        "A client certificate is required", "This is an internal endpoint: present a certificate issued by the deployment's CA.");
                    return;
                }

                if (roles.Length > 0 && !identities.Any(i => roles.Contains(i.Role)))
                {
                    await RefuseAsync(context, StatusCodes.Status403Forbidden, "peer-role-forbidden",
                        "The certificate's role may not call this endpoint", $"Allowed roles: {string.Join(", ", roles)}.");
                    return;
                }

                await nextMiddleware(context);
            });
            next(app);
        };

        private static Task RefuseAsync(HttpContext context, int status, string slug, string title, string detail)
        {
            context.RequestServices.GetRequiredService<PeerMetrics>().Refused(context.Request.Path.Value ?? "/", status == 401 ? "unauthenticated" : "forbidden");
            context.Response.StatusCode = status;
            return Results.Problem(detail: detail, statusCode: status, title: title, type: $"urn:geo:problem:{slug}").ExecuteAsync(context);
        }
    }
}
