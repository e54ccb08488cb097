using System.Text.Json.Nodes;
using Geo.Core.Tls;
using Geo.Testing.Services;
using Grpc.Net.Client;

namespace Geo.Testing.Security;

/// <summary>
/// The test run's throwaway certificate authority (made once per test process, in a temporary folder deleted at exit):
/// a certificate per region and role of <c>config/topology.local.json</c> plus the admin's, exactly as <c>./geo up</c>
/// writes them, and the harness's own client certificate. Every service <see cref="ServiceProcess"/> starts gets its
/// certificate; every client made here presents the harness certificate by default, which names the api, edge and
/// replicator role of every region and the admin role, so a test not about security passes every role check as before.
/// Security tests pick a single-identity certificate with <c>For</c>.
/// </summary>
public static class TestPki
{
    /// <summary>Regions some fixtures add to the local topology's (the Replicator tests' third us region).</summary>
    private static readonly string[] ExtraRegions = ["us-south"];

    private static readonly Lazy<State> Shared = new(Create, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lock IssueLock = new();

    /// <summary>The folder holding <c>ca.crt</c>, <c>ca.key</c> and <c>{region}-{role}.crt/.key</c>.</summary>
    public static string Directory => Shared.Value.Directory;

    /// <summary>The harness client's credentials (every api, edge and replicator identity, and admin).</summary>
    public static TlsCredentials Harness => Shared.Value.Harness;

    /// <summary>The regions certificates were made for.</summary>
    public static IReadOnlyList<string> Regions => Shared.Value.Regions;

    /// <summary>Credentials of one identity of the run's CA, as <c>./geo up</c> issues them.</summary>
    public static TlsCredentials For(PeerIdentity identity)
    {
        Ensure(identity);
        return TlsCredentials.FromDirectory(Directory, identity);
    }

    /// <summary>Credentials of one region and role.</summary>
    public static TlsCredentials For(string region, string role) => For(new PeerIdentity(region, role));

    /// <summary>A certificate of the run's CA naming <paramref name="identities"/> (each call issues a new one).</summary>
    public static TlsCredentials Issue(params PeerIdentity[] identities)
    {
        using var pki = GeoPki.LoadAuthority(Directory);
        return new TlsCredentials(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(pki.Ca.RawData), pki.Issue(identities));
    }

    /// <summary>The <c>Geo:Tls</c> settings of a service of <paramref name="region"/> running as <paramref name="role"/>.</summary>
    public static IReadOnlyDictionary<string, string> ServiceSettings(string region, string role)
    {
        Ensure(new PeerIdentity(region, role));
        return Geo.Dev.ServiceLaunch.TlsSettings(Directory, region, role);
    }

    /// <summary>A gRPC channel presenting no client certificate.</summary>
    public static GrpcChannel AnonymousChannel(Uri address)
        => GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = AnonymousHandler(), DisposeHttpClient = true });

    // An identity the run's CA has not issued yet (a region a test made up) gets its certificate now.
    private static void Ensure(PeerIdentity identity)
    {
        if (string.IsNullOrEmpty(identity.Region) || identity.Region.Contains('/', StringComparison.Ordinal) || identity.Region.Contains('.', StringComparison.Ordinal))
        {
            return; // not a region; the service's own validation reports it
        }

        lock (IssueLock)
        {
            if (!File.Exists(GeoPki.CertificatePath(Directory, identity)))
            {
                using var pki = GeoPki.LoadAuthority(Directory);
                using var certificate = pki.Issue([identity]);
                GeoPki.Write(Directory, GeoPki.FileStem(identity), certificate);
            }
        }
    }

    /// <summary>A handler presenting <paramref name="credentials"/> (default: the harness's) and trusting the run's CA only.</summary>
    public static SocketsHttpHandler Handler(TlsCredentials? credentials = null) => new()
    {
        SslOptions = (credentials ?? Harness).ClientOptions(),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    };

    /// <summary>A handler presenting no client certificate (still trusting the run's CA for the server).</summary>
    public static SocketsHttpHandler AnonymousHandler() => new()
    {
        SslOptions = TlsCredentials.AnonymousClientOptions(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(Harness.Authority.RawData)),
    };

    /// <summary>A gRPC channel to a directory or replicator, presenting <paramref name="credentials"/> (default: the harness's).</summary>
    public static GrpcChannel Channel(Uri address, TlsCredentials? credentials = null)
        => GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            HttpHandler = Handler(credentials),
            DisposeHttpClient = true,
        });

    private static State Create()
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("geo-pki-").FullName;
        var topology = JsonNode.Parse(File.ReadAllText(Path.Combine(ServiceProcess.RepositoryRoot(), "config", "topology.local.json")))!;
        var regions = topology["regions"]!.AsObject().Select(r => r.Key).Concat(ExtraRegions).ToList();
        GeoPki.Provision(directory, regions);
        using var pki = GeoPki.LoadAuthority(directory);
        var identities = regions.SelectMany(r => new[] { PeerRoles.Api, PeerRoles.Edge, PeerRoles.Replicator }.Select(role => new PeerIdentity(r, role)))
            .Append(PeerIdentity.Admin).ToList();
        using var harness = pki.Issue(identities);
        GeoPki.Write(directory, "harness", harness);
        var credentials = TlsCredentials.FromFiles(Path.Combine(directory, GeoPki.CaCertificateFile), Path.Combine(directory, "harness.crt"), Path.Combine(directory, "harness.key"));
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                System.IO.Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return new State(directory, credentials, regions);
    }

    private sealed record State(string Directory, TlsCredentials Harness, IReadOnlyList<string> Regions);
}
