using Geo.Core.Tls;

namespace Geo.Dev;

/// <summary>
/// How a Geo service process is started, the same for the test harness and the local runner: <c>dotnet</c> with the
/// built assembly, <c>--urls</c>, and every setting as command-line configuration (<c>--Key=Value</c>; later ones
/// win); the log hash key travels in the environment, never on the command line that <c>ps</c> shows.
/// </summary>
public static class ServiceLaunch
{
    /// <summary>The environment variable of <c>Geo:Logging:UserHashKey</c>.</summary>
    public const string UserHashKeyVariable = "Geo__Logging__UserHashKey";

    /// <summary>The arguments of <c>dotnet</c>: the assembly, <c>--urls={url}</c>, then each setting.</summary>
    public static IReadOnlyList<string> Arguments(string assembly, Uri url, IEnumerable<KeyValuePair<string, string>> settings)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(settings);
        var args = new List<string> { assembly, $"--urls={url.GetLeftPart(UriPartial.Authority)}" };
        args.AddRange(settings.Select(s => $"--{s.Key}={s.Value}"));
        return args;
    }

    /// <summary>A service's <c>Geo:Tls</c> settings: the CA and the certificate of <paramref name="region"/> and <paramref name="role"/> in <paramref name="pkiDirectory"/>.</summary>
    public static IReadOnlyDictionary<string, string> TlsSettings(string pkiDirectory, string region, string role)
    {
        var identity = new PeerIdentity(region, role);
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Geo:Tls:CaFile"] = Path.Combine(pkiDirectory, GeoPki.CaCertificateFile),
            ["Geo:Tls:CertificateFile"] = GeoPki.CertificatePath(pkiDirectory, identity),
            ["Geo:Tls:KeyFile"] = GeoPki.KeyPath(pkiDirectory, identity),
        };
    }
}
