namespace Geo.ServiceDefaults.Tls;

/// <summary>
/// This service's mutual-TLS material (section <c>Geo:Tls</c>): the deployment's CA certificate and the service's own
/// certificate and key, each as a PEM file path or as PEM text (what a cloud secret store injects as an environment
/// variable, e.g. <c>Geo__Tls__Certificate</c>). Required: a Geo service never listens without TLS.
/// </summary>
public sealed class TlsOptions
{
    public const string SectionName = "Geo:Tls";

    /// <summary>Path of the CA certificate (PEM) every peer must chain to, e.g. <c>.geo/pki/ca.crt</c>.</summary>
    public string? CaFile { get; set; }

    /// <summary>The CA certificate as PEM text (instead of <see cref="CaFile"/>).</summary>
    public string? Ca { get; set; }

    /// <summary>Path of this service's certificate (PEM), e.g. <c>.geo/pki/us-east-directory.crt</c>.</summary>
    public string? CertificateFile { get; set; }

    /// <summary>This service's certificate as PEM text (instead of <see cref="CertificateFile"/>).</summary>
    public string? Certificate { get; set; }

    /// <summary>Path of this service's private key (PEM, PKCS#8).</summary>
    public string? KeyFile { get; set; }

    /// <summary>This service's private key as PEM text (instead of <see cref="KeyFile"/>).</summary>
    public string? Key { get; set; }
}
