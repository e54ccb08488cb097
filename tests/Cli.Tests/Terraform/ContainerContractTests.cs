using System.Net;
using System.Text.RegularExpressions;
using Geo.Contracts.Directory;
using Geo.Core.Tls;
using Geo.Testing;
using Geo.Testing.Security;
using Geo.Testing.Services;

namespace Geo.Cli.Tests.Terraform;

/// <summary>
/// The container contract the terraform topology module gives every service (its <c>Kestrel__Endpoints__*</c>
/// environment, read from the module's text, not copied here) holds on a real process: mutual TLS on the HTTPS port, and
/// a cleartext port that answers health and nothing else, because a cleartext caller has no certificate.
/// </summary>
public sealed partial class ContainerContractTests(PostgresServer postgres, RedisServer redis)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_terraform_endpoints_serve_mutual_TLS_and_cleartext_health_only()
    {
        var endpoints = TerraformKestrelEndpoints();
        Assert.Equal("https://+:8443", endpoints["Kestrel:Endpoints:Https:Url"]);
        Assert.Equal("http://+:8080", endpoints["Kestrel:Endpoints:Http:Url"]);

        using var topology = await LocalTopology.CreateAsync(postgres, redis, "contract", ["eu-west"]);
        var tlsPort = topology.Port("eu-west", "directory");
        var healthPort = FreePort.Next();
        var settings = topology.Settings("eu-west");
        foreach (var (key, value) in endpoints)
        {
            // The same endpoints on loopback ports: "+:8443" is the TLS port, "+:8080" the cleartext one.
            settings[key] = value.Replace("+:8443", $"127.0.0.1:{tlsPort}", StringComparison.Ordinal)
                .Replace("+:8080", $"127.0.0.1:{healthPort}", StringComparison.Ordinal);
        }

        // Ready means the harness's HTTPS probe on the TLS port (with its certificate) answered 200.
        await using var directory = await ServiceProcess.StartAsync("ShardDirectory", tlsPort, settings, http2Only: true, ct: Ct);

        using var cleartext = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{healthPort}"), Timeout = TimeSpan.FromSeconds(10) };
        using (var health = await cleartext.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }

        using (var metrics = await cleartext.GetAsync(new Uri("/metrics", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, metrics.StatusCode);
            Assert.Contains("client-certificate-required", await metrics.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        // gRPC over the TLS port with a certificate works; without one it is refused.
        var address = new Uri($"https://127.0.0.1:{tlsPort}");
        using (var channel = TestPki.Channel(address, TestPki.For(PeerIdentity.Admin)))
        {
            var map = await new Contracts.Directory.Directory.DirectoryClient(channel).GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct);
            Assert.True(map.Epoch >= 1);
        }

        using (var anonymous = TestPki.AnonymousChannel(address))
        {
            var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
                await new Contracts.Directory.Directory.DirectoryClient(anonymous).GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct));
            Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, refused.StatusCode);
        }
    }

    // Kestrel__Endpoints__<Name>__<Field> = "<value>" in the topology module's outputs, as configuration keys.
    private static Dictionary<string, string> TerraformKestrelEndpoints()
    {
        var file = Path.Combine(ServiceProcess.RepositoryRoot(), "terraform", "modules", "topology", "outputs.tf");
        var found = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match m in KestrelSetting().Matches(File.ReadAllText(file)))
        {
            found[m.Groups["name"].Value.Replace("__", ":", StringComparison.Ordinal)] = m.Groups["value"].Value;
        }

        Assert.NotEmpty(found);
        return found;
    }

    [GeneratedRegex("""(?<name>Kestrel__Endpoints__\w+?__\w+)\s*=\s*"(?<value>[^"]+)" """, RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex KestrelSetting();
}
