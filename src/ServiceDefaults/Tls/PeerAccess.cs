using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Geo.Core.Tls;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace Geo.ServiceDefaults.Tls;

/// <summary>Where a region's calls may come from, for <see cref="PeerRoleAttribute"/>.</summary>
public enum PeerRegion
{
    /// <summary>Any region of the deployment.</summary>
    Any,

    /// <summary>This service's own region only (a region's API or replicator talking to its own directory).</summary>
    Local,

    /// <summary>Another region only (replicator to replicator).</summary>
    Remote,
}

/// <summary>
/// The roles that may call a gRPC method (on the method of the service implementation), checked by
/// <see cref="PeerAuthorizationInterceptor"/>. A method without it is open to any authenticated peer. The admin role
/// is not bound to a region, so <see cref="Region"/> does not apply to it.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class PeerRoleAttribute(params string[] roles) : Attribute
{
    public IReadOnlyList<string> Roles { get; } = roles;

    public PeerRegion Region { get; init; } = PeerRegion.Any;
}

/// <summary>The authenticated caller of a request: identities from its verified client certificate, never from a header.</summary>
public static class PeerAccess
{
    private static readonly object CallerKey = new();

    // Keyed by the connection's certificate object, so a connection parses it once. Not the connection's Items: an
    // HTTP/2 connection shares them among its streams, which run concurrently, and they are a plain dictionary — ten
    // concurrent first calls on one connection wrote to it at once and one of them failed with UNKNOWN.
    private static readonly ConditionalWeakTable<X509Certificate2, IReadOnlyList<PeerIdentity>> Parsed = [];

    /// <summary>
    /// The <c>geo://</c> identities of the request's client certificate. Kestrel has already refused, at the TLS
    /// handshake, any certificate that does not chain to the configured CA; empty when none was presented.
    /// Parsed once per certificate; safe to call from concurrent requests of one connection.
    /// </summary>
    public static IReadOnlyList<PeerIdentity> Identities(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Connection.ClientCertificate is { } certificate
            ? Parsed.GetValue(certificate, PeerIdentity.FromCertificate)
            : [];
    }

    /// <summary>The identity the call was authorized as (set by <see cref="PeerAuthorizationInterceptor"/>).</summary>
    public static PeerIdentity Caller(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.GetHttpContext().Items[CallerKey] as PeerIdentity
            ?? throw new InvalidOperationException("No authorized caller: is PeerAuthorizationInterceptor registered?");
    }

    internal static void SetCaller(HttpContext context, PeerIdentity identity) => context.Items[CallerKey] = identity;

    /// <summary>The identity among <paramref name="identities"/> that satisfies <paramref name="rule"/>, or null.</summary>
    /// <remarks>For <see cref="PeerRegion.Remote"/> a certificate naming the role in more than one region is ambiguous and refused.</remarks>
    public static PeerIdentity? Match(IReadOnlyList<PeerIdentity> identities, PeerRoleAttribute? rule, string localRegion)
    {
        ArgumentNullException.ThrowIfNull(identities);
        if (rule is null || rule.Roles.Count == 0)
        {
            return identities.Count > 0 ? identities[0] : null;
        }

        var candidates = identities.Where(i => rule.Roles.Contains(i.Role)
            && (i.Role == PeerRoles.Admin ? i.Region == PeerIdentity.AnyRegion
                : rule.Region switch
                {
                    PeerRegion.Local => i.Region == localRegion,
                    PeerRegion.Remote => i.Region != localRegion && i.Region != PeerIdentity.AnyRegion,
                    _ => i.Region != PeerIdentity.AnyRegion,
                })).ToList();
        if (rule.Region == PeerRegion.Remote && candidates.Where(c => c.Role != PeerRoles.Admin).Select(c => c.Region).Distinct(StringComparer.Ordinal).Skip(1).Any())
        {
            return null;
        }

        return candidates.FirstOrDefault();
    }
}
