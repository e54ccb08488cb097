using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace Geo.ServiceDefaults.Auth;

/// <summary>PEM keys of an issuer that signs its tokens with a key file (the local development issuer).</summary>
public static class SigningKeys
{
    /// <summary>The verification key in a PEM file (<c>PUBLIC KEY</c>, RSA or EC); a private key file works too.</summary>
    public static SecurityKey LoadPublicKey(string path)
    {
        var pem = File.ReadAllText(path);
        return FromPem(pem, path);
    }

    /// <summary>A signing or verification key from PEM text, EC tried first, then RSA.</summary>
    public static AsymmetricSecurityKey FromPem(string pem, string source)
    {
        ArgumentNullException.ThrowIfNull(pem);
        var fields = PemEncoding.TryFind(pem, out var found) ? pem[found.Label] : throw new ArgumentException($"{source} holds no PEM block.");
        var label = fields.ToString();
        var keyId = KeyId(pem);
        if (label.Contains("EC", StringComparison.Ordinal) || IsEc(pem))
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec) { KeyId = keyId };
        }

        var rsa = RSA.Create();
        rsa.ImportFromPem(pem);
        return new RsaSecurityKey(rsa) { KeyId = keyId };
    }

    private static bool IsEc(string pem)
    {
        try
        {
            using var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return true;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return false;
        }
    }

    /// <summary>A stable key id: the first 16 hex digits of the SHA-256 of the public key's SubjectPublicKeyInfo.</summary>
    private static string KeyId(string pem)
    {
        byte[] spki;
        try
        {
            using var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            spki = ec.ExportSubjectPublicKeyInfo();
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            using var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            spki = rsa.ExportSubjectPublicKeyInfo();
        }

        return Convert.ToHexStringLower(SHA256.HashData(spki))[..16];
    }

    /// <summary>PEM of a new P-256 key pair: (private PKCS#8, public SubjectPublicKeyInfo).</summary>
    public static (string PrivatePem, string PublicPem) NewEcKeyPair()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return (ec.ExportPkcs8PrivateKeyPem(), ec.ExportSubjectPublicKeyInfoPem());
    }
}
