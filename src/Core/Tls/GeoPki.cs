using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Geo.Core.Tls;

/// <summary>
/// A deployment's certificate authority and the certificates it issues (ECDSA P-256, made with
/// <see cref="CertificateRequest"/>). Files are PEM, in one folder: <c>ca.crt</c>, <c>ca.key</c> and, per identity,
/// <c>{region}-{role}.crt</c> and <c>.key</c> (the admin's is <c>global-admin</c>). <c>./geo up</c> writes them under
/// <c>.geo/pki</c> (<c>geoctl auth certs</c>); the test harness makes a throwaway set per run. Never checked in.
/// </summary>
public sealed class GeoPki : IDisposable
{
    public const string CaCertificateFile = "ca.crt";
    public const string CaKeyFile = "ca.key";

    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    private GeoPki(X509Certificate2 ca)
    {
        Ca = ca;
    }

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Ca { get; }

    /// <summary>A new CA named <paramref name="name"/>, valid for <paramref name="lifetime"/> (default 10 years).</summary>
    public static GeoPki CreateAuthority(string name = "Geo local CA", TimeSpan? lifetime = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        return new GeoPki(request.CreateSelfSigned(now.AddMinutes(-5), now + (lifetime ?? TimeSpan.FromDays(3650))));
    }

    /// <summary>The CA written to <paramref name="directory"/> by <see cref="WriteAuthority"/>.</summary>
    public static GeoPki LoadAuthority(string directory)
        => new(X509Certificate2.CreateFromPemFile(Path.Combine(directory, CaCertificateFile), Path.Combine(directory, CaKeyFile)));

    /// <summary>
    /// A certificate for <paramref name="identities"/> (one for everything <c>geo up</c> issues; the test harness's
    /// default client certificate names several), usable as TLS server and client certificate: SAN URIs for the
    /// identities, DNS <c>localhost</c>, IP 127.0.0.1 and ::1, and <paramref name="dnsNames"/>.
    /// </summary>
    public X509Certificate2 Issue(IReadOnlyCollection<PeerIdentity> identities, IEnumerable<string>? dnsNames = null, TimeSpan? lifetime = null)
    {
        ArgumentNullException.ThrowIfNull(identities);
        if (identities.Count == 0)
        {
            throw new ArgumentException("A Geo certificate names at least one identity.", nameof(identities));
        }

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var first = identities.First();
        var request = new CertificateRequest(new X500DistinguishedName($"CN={first.Region} {first.Role}, O=Geo"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([ServerAuth, ClientAuth], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var names = new SubjectAlternativeNameBuilder();
        foreach (var identity in identities)
        {
            names.AddUri(identity.ToUri());
        }

        names.AddDnsName("localhost");
        foreach (var dns in dnsNames ?? [])
        {
            names.AddDnsName(dns);
        }

        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build());

        var now = DateTimeOffset.UtcNow;
        var notAfter = now + (lifetime ?? TimeSpan.FromDays(365));
        if (notAfter > Ca.NotAfter)
        {
            notAfter = Ca.NotAfter;
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // positive
        using var issued = request.Create(Ca, now.AddMinutes(-5), notAfter, serial);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Writes <c>ca.crt</c> and <c>ca.key</c> (owner-only permissions on the key).</summary>
    public void WriteAuthority(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, CaCertificateFile), Ca.ExportCertificatePem());
        WriteKey(Path.Combine(directory, CaKeyFile), Ca);
    }

    /// <summary>Writes <paramref name="certificate"/> as <c>{name}.crt</c> and <c>{name}.key</c>.</summary>
    public static void Write(string directory, string name, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        System.IO.Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, name + ".crt"), certificate.ExportCertificatePem());
        WriteKey(Path.Combine(directory, name + ".key"), certificate);
    }

    /// <summary>The file stem of an identity's certificate: <c>{region}-{role}</c>.</summary>
    public static string FileStem(PeerIdentity identity) => $"{identity.Region}-{identity.Role}";

    /// <summary>Path of an identity's certificate in <paramref name="directory"/>.</summary>
    public static string CertificatePath(string directory, PeerIdentity identity) => Path.Combine(directory, FileStem(identity) + ".crt");

    /// <summary>Path of an identity's private key in <paramref name="directory"/>.</summary>
    public static string KeyPath(string directory, PeerIdentity identity) => Path.Combine(directory, FileStem(identity) + ".key");

    /// <summary>
    /// The CA (created when <paramref name="directory"/> has none) and one certificate per region and service role
    /// plus the admin's, each written unless already there. Returns the identities written.
    /// </summary>
    public static IReadOnlyList<PeerIdentity> Provision(string directory, IEnumerable<string> regions, bool force = false)
    {
        ArgumentNullException.ThrowIfNull(regions);
        // A new CA invalidates every certificate issued by the old one: reissue them all.
        force = force || !File.Exists(Path.Combine(directory, CaCertificateFile)) || !File.Exists(Path.Combine(directory, CaKeyFile));
        using var pki = force ? CreateAuthority() : LoadAuthority(directory);
        if (force)
        {
            pki.WriteAuthority(directory);
        }

        var identities = regions.SelectMany(r => PeerRoles.Services.Select(role => new PeerIdentity(r, role))).Append(PeerIdentity.Admin).ToList();
        var written = new List<PeerIdentity>();
        foreach (var identity in identities)
        {
            if (!force && File.Exists(CertificatePath(directory, identity)) && File.Exists(KeyPath(directory, identity)))
            {
                continue;
            }

            using var certificate = pki.Issue([identity]);
            Write(directory, FileStem(identity), certificate);
            written.Add(identity);
        }

        return written;
    }

    public void Dispose() => Ca.Dispose();

    private static void WriteKey(string path, X509Certificate2 certificate)
    {
        var pem = (certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException("The certificate has no ECDSA private key.")).ExportPkcs8PrivateKeyPem();
        File.WriteAllText(path, string.Empty);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.WriteAllText(path, pem);
    }
}
