using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Geo.Core.Tls;
using Geo.Dev;

namespace Geo.Cli.Dev;

/// <summary>
/// Where the local system lives: <c>.geo/</c> of the checkout — <c>secrets/</c> (development issuer, log hash key),
/// <c>pki/</c> (local CA and certificates), <c>logs/</c> (one per process), <c>run/</c> (one pid file per service),
/// <c>redis/</c>, <c>prometheus/</c> and the PostgreSQL cluster (<c>pgdata/</c>, or under /var/tmp when this runs as
/// root and the postgres user cannot reach the checkout).
/// </summary>
internal sealed class LocalPaths
{
    public const int PostgresPort = 5433;
    public const int RedisPort = 6380;

    public LocalPaths(string root)
    {
        Root = root;
        GeoDir = Path.Combine(root, ".geo");
        Topology = Path.Combine(root, "config", "topology.local.json");
    }

    /// <summary>The checkout (holds Geo.sln).</summary>
    public string Root { get; }

    public string GeoDir { get; }

    /// <summary>config/topology.local.json.</summary>
    public string Topology { get; }

    public string Pki => Path.Combine(GeoDir, "pki");

    public string Secrets => Path.Combine(GeoDir, "secrets");

    public string Logs => Path.Combine(GeoDir, "logs");

    public string Run => Path.Combine(GeoDir, "run");

    public string UserHashKey => Path.Combine(Secrets, "user-hash-key");

    /// <summary>
    /// A client that presents the admin certificate of .geo/pki and checks every service's against the local CA, as
    /// every curl of ./geo did (health is anonymous; the API and /metrics are not). Without a CA yet, a plain client.
    /// </summary>
    public HttpClient AdminClient(TimeSpan timeout) => File.Exists(Path.Combine(Pki, GeoPki.CaCertificateFile))
        ? new HttpClient(new SocketsHttpHandler { SslOptions = TlsCredentials.FromDirectory(Pki, PeerIdentity.Admin).ClientOptions() }) { Timeout = timeout }
        : new HttpClient { Timeout = timeout };

    public static LocalPaths FromDirectory(string start) => new(GeoService.RepositoryRoot(start));

    public string Log(string name) => Path.Combine(Logs, name + ".log");

    public string PidFile(string name) => Path.Combine(Run, name + ".pid");

    /// <summary>The PostgreSQL data directory (see the class summary).</summary>
    public string PostgresData()
    {
        if (ChildProcesses.IsRoot && !PostgresReachesCheckout())
        {
            return Path.Combine("/var/tmp", "geo-" + Md5Prefix(Root), "pgdata");
        }

        return Path.Combine(GeoDir, "pgdata");
    }

    private bool PostgresReachesCheckout()
    {
        try
        {
            ChildProcesses.RunAsync("runuser", ["-u", "postgres", "--", "test", "-x", Root], TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    // The folder name ./geo has always used for this checkout (md5 of its path), so an existing cluster is found again.
    [SuppressMessage("Security", "CA5351:Do Not Use Broken Cryptographic Algorithms", Justification = "A folder name, not a security function.")]
    private static string Md5Prefix(string text) => Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(text)))[..12];
}
