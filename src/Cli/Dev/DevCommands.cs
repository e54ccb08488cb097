using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Geo.Cli.CommandLine;
using Geo.Core.Tls;
using Geo.Core.Topology;
using Geo.Dev;
using Geo.ServiceDefaults.Auth;

namespace Geo.Cli.Dev;

/// <summary>
/// <c>geoctl dev up|down|status|demo</c>: the local four-region system under <c>.geo/</c> of the checkout, behind
/// <c>./geo up|down|status|demo</c> (which install the prerequisites and build first). The services run detached and
/// outlive the command; <c>down</c> finds them again by their pid files.
/// </summary>
internal static class DevCommands
{
    public static Command Create(CliHost host)
    {
        var prometheus = new Option<bool>("--prometheus") { Description = "Also start a Prometheus (127.0.0.1:9090) with ops/prometheus: scrape configuration and alerting rules." };
        var began = new Option<long?>("--build-began") { Description = "Unix time the build before this began (./geo up passes it), for the time in all.", HelpName = "seconds" };
        var up = new Command("up", "Run the local four-region system (directory, API, replicator, edge per region); prints the endpoints.") { prometheus, began };
        up.SetAction((p, ct) => RunAsync(host, system => UpAsync(host, system, p.GetValue(prometheus), p.GetValue(began))));
        var down = new Command("down", "Stop it (data stays in .geo/).");
        down.SetAction((p, ct) => RunAsync(host, system => DownAsync(host, system)));
        var status = new Command("status", "Health of every process, and the replication lag between regions.");
        status.SetAction((p, ct) => RunAsync(host, async system =>
        {
            await LocalStatus.WriteAsync(system.Paths, system.Services, host.Out);
            return ExitCodes.Ok;
        }));
        var demo = new Command("demo", "A scripted walk-through on the running system (placement, replication, residency, failover).");
        demo.SetAction((p, ct) => RunAsync(host, system => new LocalDemo(system.Paths, system.Topology, system.Services, host.Out, host.Error).RunAsync()));
        return new Command("dev", "The local system of a checkout (behind ./geo up|down|status|demo).") { up, down, status, demo };
    }

    private static async Task<int> RunAsync(CliHost host, Func<LocalSystem, Task<int>> action)
    {
        try
        {
            var system = LocalSystem.Open(host.CurrentDirectory);
            return await action(system);
        }
        catch (LocalSystemException e)
        {
            await host.Error.WriteLineAsync($"geo: {e.Message}");
            return ExitCodes.Unexpected;
        }
    }

    private static async Task<int> UpAsync(CliHost host, LocalSystem system, bool withPrometheus, long? buildBegan)
    {
        var say = host.Error;
        var begun = buildBegan is { } b ? DateTimeOffset.FromUnixTimeSeconds(b) : DateTimeOffset.UtcNow;
        EnsureDevIssuer(system.Paths);
        await EnsurePkiAsync(system, say);
        var clock = Stopwatch.StartNew();
        var started = system.Services.Time.GetUtcNow(); // the readiness deadlines count from here
        var databases = new LocalDatabases(system.Paths, say);
        await databases.StartPostgresAsync(system.Topology);
        await databases.StartRedisAsync();
        await say.WriteLineAsync($"geo: postgres and redis ready after {Seconds(clock)} s; starting {system.Services.All.Count} services");
        // Directories first (the APIs, edges and replicators read users and shard maps from them), then the rest at once.
        var directories = system.Services.All.Where(s => s.Service == GeoService.ShardDirectory).ToList();
        var rest = system.Services.All.Except(directories).ToList();
        foreach (var service in directories)
        {
            await system.Services.StartAsync(service);
        }

        await system.Services.WaitReadyAsync(directories, started.AddSeconds(300));
        await say.WriteLineAsync($"geo: directories ready after {Seconds(clock)} s");
        foreach (var service in rest)
        {
            await system.Services.StartAsync(service);
        }

        await system.Services.WaitReadyAsync(rest, started.AddSeconds(300));
        if (withPrometheus)
        {
            await new LocalPrometheus(system.Paths).StartAsync(say);
        }

        await LocalStatus.WriteAsync(system.Paths, system.Services, host.Out);
        var edge = system.Services.Find("EdgeRouter", "us-east").Endpoint;
        var total = (long)(DateTimeOffset.UtcNow - begun).TotalSeconds;
        await host.Out.WriteAsync($"""

            Ready in {Seconds(clock)} s after the build ({total} s in all). Try it through the us-east edge (an eu user lands in an eu region;
            the edge serves HTTPS with a certificate of the local CA in .geo/pki; every call carries a bearer token):
              TOKEN=$(./geo ctl auth token --service)
              USER_ID=$(curl -s --cacert .geo/pki/ca.crt -X POST {edge}/v1/users -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"{"}"residency":"eu"{"}"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["userId"])')
              USER_TOKEN=$(./geo ctl auth token --user $USER_ID)
              curl -s --cacert .geo/pki/ca.crt -X PUT {edge}/v1/users/$USER_ID/docs/notes/hello -H "authorization: Bearer $USER_TOKEN" -H 'content-type: application/json' -d '{"{"}"text":"hi"{"}"}'
              curl -si --cacert .geo/pki/ca.crt {edge}/v1/users/$USER_ID/docs/notes/hello -H "authorization: Bearer $USER_TOKEN"
              curl -si --cacert .geo/pki/ca.crt {edge}/v1/users/$USER_ID/docs/notes/hello    # no token: 401
            Stop with ./geo down (data stays in .geo/).

            """);
        return ExitCodes.Ok;
    }

    private static async Task<int> DownAsync(CliHost host, LocalSystem system)
    {
        var say = host.Error;
        // Every service at once: each drains (readiness down, in-flight requests finish) and exits; databases stop after them.
        await system.Services.StopAllAsync(say);
        await new LocalPrometheus(system.Paths).StopAsync();
        await LocalDatabases.StopRedisAsync();
        await new LocalDatabases(system.Paths, say).StopPostgresAsync();
        var crashed = Directory.Exists(system.Paths.Logs)
            ? Directory.EnumerateFiles(system.Paths.Logs, "*.log").Order(StringComparer.Ordinal)
                .Where(f => File.ReadAllText(f).Contains("Unhandled exception", StringComparison.Ordinal)).ToList()
            : [];
        if (crashed.Count > 0)
        {
            await say.WriteLineAsync($"geo: a service crashed (\"Unhandled exception\") — see {string.Join(' ', crashed)}");
        }

        await say.WriteLineAsync("geo: stopped (data kept in .geo/)");
        return ExitCodes.Ok;
    }

    // The local development issuer: a signing key pair under .geo/secrets/ (never checked in) that every local service
    // trusts, and the key of the users' hashes in logs (docs/security.md): one per local system, so every process names
    // a user alike.
    private static void EnsureDevIssuer(LocalPaths paths)
    {
        DevelopmentIssuer.EnsureKeyFiles(paths.Secrets);
        if (File.Exists(paths.UserHashKey) && new FileInfo(paths.UserHashKey).Length > 0)
        {
            return;
        }

        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // umask 077: the owner's only
        }

        using var file = new FileStream(paths.UserHashKey, options);
        using var writer = new StreamWriter(file);
        writer.Write(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) + "\n");
    }

    // Mutual TLS between the services: the local CA and a certificate per region and role, never checked in.
    private static async Task EnsurePkiAsync(LocalSystem system, TextWriter say)
    {
        var identities = system.Topology.Regions.Keys.SelectMany(r => PeerRoles.Services.Select(role => new PeerIdentity(r, role)))
            .Append(PeerIdentity.Admin);
        var pki = system.Paths.Pki;
        if (File.Exists(Path.Combine(pki, GeoPki.CaCertificateFile)) && identities.All(i => File.Exists(GeoPki.KeyPath(pki, i))))
        {
            return;
        }

        await say.WriteLineAsync("geo: creating the local CA and service certificates in .geo/pki");
        var written = GeoPki.Provision(pki, system.Topology.Regions.Keys, force: false);
        await say.WriteLineAsync($"{pki}: wrote {written.Count} certificate(s): {string.Join(", ", written.Select(GeoPki.FileStem))}.");
    }

    private static string Seconds(Stopwatch clock) => ((long)clock.Elapsed.TotalSeconds).ToString(CultureInfo.InvariantCulture);

    /// <summary>One checkout's local system: its paths, its topology (loaded once), its services.</summary>
    private sealed class LocalSystem
    {
        private LocalSystem(LocalPaths paths, GeoTopology topology, IReadOnlyList<string> regionOrder)
        {
            Paths = paths;
            Topology = topology;
            Services = new LocalServices(paths, topology, regionOrder);
        }

        public LocalPaths Paths { get; }

        public GeoTopology Topology { get; }

        public LocalServices Services { get; }

        public static LocalSystem Open(string directory)
        {
            var paths = LocalPaths.FromDirectory(directory);
            var topology = TopologyLoader.Load(paths.Topology);
            // The regions in the file's order (us-east, us-west, eu-west, eu-central), as ./geo has always listed them.
            using var document = JsonDocument.Parse(File.ReadAllText(paths.Topology));
            var order = document.RootElement.GetProperty("regions").EnumerateObject().Select(r => r.Name).ToList();
            return new LocalSystem(paths, topology, order);
        }
    }
}
