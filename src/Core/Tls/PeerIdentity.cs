using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;

namespace Geo.Core.Tls;

/// <summary>The roles a Geo certificate can name (docs/architecture.md §12).</summary>
public static class PeerRoles
{
    public const string Edge = "edge";
    public const string Api = "api";
    public const string Directory = "directory";
    public const string Replicator = "replicator";
    public const string Admin = "admin";

    /// <summary>Every role, in the order <c>geoctl auth certs</c> issues them.</summary>
    public static readonly IReadOnlyList<string> All = [Edge, Api, Directory, Replicator, Admin];

    /// <summary>The roles a region runs a service for (admin is not regional).</summary>
    public static readonly IReadOnlyList<string> Services = [Edge, Api, Directory, Replicator];
}

/// <summary>
/// Who a peer is, as its certificate says: a region and a role, carried as a subject-alternative-name URI
/// <c>geo://{region}/{role}</c> (SPIFFE-style). The admin identity is not bound to a region: <c>geo://global/admin</c>.
/// A certificate is trusted for its identities only after its chain to the deployment's CA was verified; nothing a
/// caller sends in a header ever names its region or role.
/// </summary>
public sealed record PeerIdentity(string Region, string Role)
{
    public const string Scheme = "geo";

    /// <summary>The region of identities not bound to one (the operator's admin certificate).</summary>
    public const string AnyRegion = "global";

    /// <summary>The operator's identity.</summary>
    public static readonly PeerIdentity Admin = new(AnyRegion, PeerRoles.Admin);

    private static readonly Asn1Tag UriTag = new(TagClass.ContextSpecific, 6);
    private const string SubjectAltNameOid = "2.5.29.17";

    public Uri ToUri() => new($"{Scheme}://{Region}/{Role}");

    public override string ToString() => $"{Scheme}://{Region}/{Role}";

    /// <summary>Parses <c>geo://{region}/{role}</c>; null for anything else.</summary>
    public static PeerIdentity? TryParse(string uri)
    {
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Scheme != Scheme || string.IsNullOrEmpty(parsed.Host))
        {
            return null;
        }

        var role = parsed.AbsolutePath.Trim('/');
        return PeerRoles.All.Contains(role) && parsed.Query.Length == 0 && parsed.UserInfo.Length == 0 && parsed.IsDefaultPort
            ? new PeerIdentity(parsed.Host, role)
            : null;
    }

    /// <summary>Every <c>geo://</c> identity in the certificate's subject alternative names (empty when none).</summary>
    public static IReadOnlyList<PeerIdentity> FromCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var identities = new List<PeerIdentity>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value != SubjectAltNameOid)
            {
                continue;
            }

            try
            {
                var names = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
                while (names.HasData)
                {
                    if (names.PeekTag().HasSameClassAndValue(UriTag)
                        && TryParse(names.ReadCharacterString(UniversalTagNumber.IA5String, UriTag)) is { } identity)
                    {
                        identities.Add(identity);
                    }
                    else
                    {
                        names.ReadEncodedValue();
                    }
                }
            }
            catch (AsnContentException)
            {
                return []; // A malformed extension names nobody.
            }
        }

        return identities;
    }
}
