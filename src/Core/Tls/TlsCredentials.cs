using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Geo.Core.Tls;

/// <summary>
/// What a Geo process holds for mutual TLS: the deployment's CA certificate (the only trust anchor) and its own
/// certificate with key. Verifies peers' chains against that CA alone (no system roots, no revocation lists on
/// loopback or private networks) and builds the client side of a TLS connection for HttpClient and gRPC channels.
/// Servers are authenticated by their chain and a <c>geo://</c> identity rather than by host name, since topology
/// addresses may be load-balancer names the certificate does not list.
/// </summary>
public sealed class TlsCredentials : IDisposable
{
    public TlsCredentials(X509Certificate2 authority, X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(authority);
        ArgumentNullException.ThrowIfNull(certificate);
        Authority = authority;
        Certificate = certificate;
        Identities = PeerIdentity.FromCertificate(certificate);
    }

    /// <summary>The CA every peer certificate must chain to.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>This process's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The identities <see cref="Certificate"/> names.</summary>
    public IReadOnlyList<PeerIdentity> Identities { get; }

    /// <summary>From PEM text (<paramref name="ca"/>, <paramref name="certificate"/>, <paramref name="key"/>).</summary>
    public static TlsCredentials FromPem(string ca, string certificate, string key)
        => new(X509Certificate2.CreateFromPem(ca), Reimport(X509Certificate2.CreateFromPem(certificate, key)));

    /// <summary>From PEM files.</summary>
    public static TlsCredentials FromFiles(string caFile, string certificateFile, string keyFile)
        => FromPem(File.ReadAllText(caFile), File.ReadAllText(certificateFile), File.ReadAllText(keyFile));

    /// <summary>A folder written by <see cref="GeoPki.Provision"/>: its CA and the certificate of <paramref name="identity"/>.</summary>
    public static TlsCredentials FromDirectory(string directory, PeerIdentity identity)
        => FromFiles(Path.Combine(directory, GeoPki.CaCertificateFile), GeoPki.CertificatePath(directory, identity), GeoPki.KeyPath(directory, identity));

    /// <summary>True when <paramref name="certificate"/> chains to <see cref="Authority"/>, is valid now, and may be used for <paramref name="purpose"/>.</summary>
    public bool IsTrusted(X509Certificate2 certificate, TlsPurpose purpose)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(purpose == TlsPurpose.Client ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1"));
        chain.ChainPolicy.VerificationTime = DateTime.Now;
        return chain.Build(certificate)
            && chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(Authority.RawDataMemory.Span);
    }

    /// <summary>
    /// The client side of a connection to a Geo service: presents <see cref="Certificate"/> and accepts a server only
    /// when its certificate chains to <see cref="Authority"/> and names a <c>geo://</c> identity.
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions() => new()
    {
        ClientCertificates = [Certificate],
        LocalCertificateSelectionCallback = (_, _, _, _, _) => Certificate,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, _, _) => IsTrustedServer(certificate),
    };

    /// <summary>For clients that present no certificate of their own (the edge's public side, health probes).</summary>
    public static SslClientAuthenticationOptions AnonymousClientOptions(X509Certificate2 authority)
    {
        var verifier = new TlsCredentials(authority, authority);
        return new SslClientAuthenticationOptions
        {
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, _) => verifier.IsTrustedServer(certificate),
        };
    }

    public void Dispose()
    {
        Certificate.Dispose();
        Authority.Dispose();
    }

    private bool IsTrustedServer(X509Certificate? certificate)
        => certificate is not null
            && (certificate as X509Certificate2 ?? new X509Certificate2(certificate)) is var server
            && IsTrusted(server, TlsPurpose.Server)
            && PeerIdentity.FromCertificate(server).Count > 0;

    // A PEM-loaded key is ephemeral; some TLS stacks want a key they can persist. A PKCS#12 round trip gives one.
    private static X509Certificate2 Reimport(X509Certificate2 certificate)
    {
        using (certificate)
        {
            return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), password: null);
        }
    }
}

/// <summary>What a peer certificate is checked for.</summary>
public enum TlsPurpose
{
    /// <summary>A client presenting it to a server (extended key usage clientAuth).</summary>
    Client,

    /// <summary>A server presenting it to a client (serverAuth).</summary>
    Server,
}
