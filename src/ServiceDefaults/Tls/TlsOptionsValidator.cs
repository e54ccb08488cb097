using System.Security.Cryptography;
using Geo.Core.Tls;
using Microsoft.Extensions.Options;

namespace Geo.ServiceDefaults.Tls;

/// <summary>
/// Fails start-up with every problem of <c>Geo:Tls</c> at once: each of CA, certificate and key given exactly once
/// (file or PEM text), readable, the certificate chained to the CA and naming the role this service runs as.
/// </summary>
internal sealed class TlsOptionsValidator(string role) : IValidateOptions<TlsOptions>
{
    public ValidateOptionsResult Validate(string? name, TlsOptions options)
    {
        var errors = new List<string>();
        var ca = Source(errors, "Ca", options.CaFile, options.Ca, "the deployment's CA certificate, e.g. --Geo:Tls:CaFile=.geo/pki/ca.crt");
        var certificate = Source(errors, "Certificate", options.CertificateFile, options.Certificate, $"this service's certificate, e.g. --Geo:Tls:CertificateFile=.geo/pki/us-east-{role}.crt");
        var key = Source(errors, "Key", options.KeyFile, options.Key, $"its private key, e.g. --Geo:Tls:KeyFile=.geo/pki/us-east-{role}.key");
        if (errors.Count > 0 || ca is null || certificate is null || key is null)
        {
            return ValidateOptionsResult.Fail(errors);
        }

        try
        {
            using var credentials = TlsCredentials.FromPem(ca, certificate, key);
            if (!credentials.IsTrusted(credentials.Certificate, TlsPurpose.Server) || !credentials.IsTrusted(credentials.Certificate, TlsPurpose.Client))
            {
                errors.Add("Geo:Tls:Certificate: does not chain to Geo:Tls:Ca, has expired, or lacks the serverAuth/clientAuth key usages; issue it from this CA (geoctl auth certs).");
            }

            if (!credentials.Identities.Any(i => i.Role == role))
            {
                errors.Add($"Geo:Tls:Certificate: names {(credentials.Identities.Count == 0 ? "no geo:// identity" : string.Join(", ", credentials.Identities))}; a {role} needs a certificate for geo://<region>/{role}.");
            }
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            errors.Add($"Geo:Tls: the CA, certificate or key is not valid PEM or the key does not match the certificate ({ex.Message}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static string? Source(List<string> errors, string key, string? file, string? pem, string what)
    {
        if (!string.IsNullOrWhiteSpace(file) && !string.IsNullOrWhiteSpace(pem))
        {
            errors.Add($"Geo:Tls:{key}File and Geo:Tls:{key}: both set; set one.");
            return null;
        }

        if (!string.IsNullOrWhiteSpace(pem))
        {
            return pem;
        }

        if (string.IsNullOrWhiteSpace(file))
        {
            errors.Add($"Geo:Tls:{key}File: missing; set it to {what} (or Geo:Tls:{key} to the PEM text).");
            return null;
        }

        if (!File.Exists(file))
        {
            errors.Add($"Geo:Tls:{key}File: '{file}' does not exist; ./geo up writes the files under .geo/pki (geoctl auth certs).");
            return null;
        }

        return File.ReadAllText(file);
    }
}
