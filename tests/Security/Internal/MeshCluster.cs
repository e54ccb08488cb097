using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Core.Tls;
using Geo.Testing;
using Geo.Testing.Security;
using Geo.Testing.Services;
using Grpc.Net.Client;
using Npgsql;

[assembly: AssemblyFixture(typeof(PostgresServer))]
[assembly: AssemblyFixture(typeof(RedisServer))]

namespace Geo.Security.Tests.Internal;

/// <summary>Tests of the internal trust boundary share one <see cref="MeshCluster"/> and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class MeshCollection : ICollectionFixture<MeshCluster>
{
    public const string Name = "mesh";
}

/// <summary>
/// Real processes over mutual TLS with the test run's CA: eu-west's directory, API and replicator, us-east's directory
/// and edge, and a scripted eu-central replicator (<see cref="FakePeerReplicator"/>, in process) that anti-entropy
/// talks to. Clients are made per test with the certificate the test names. <see cref="SnapshotAsync"/> reads every
/// store, so a refused call can be shown to have changed nothing.
/// </summary>
public sealed class MeshCluster(PostgresServer postgres, RedisServer redis) : IAsyncLifetime
{
    public static readonly string[] RegionIds = ["eu-west", "eu-central", "us-east"];

    private readonly List<ServiceProcess> _services = [];
    private LocalTopology? _topology;
    private Dictionary<string, string> _directoryDatabases = new(StringComparer.Ordinal);

    public LocalTopology Topology => _topology!;

    public ServiceProcess Directory(string region) => _services.Single(s => s.Port == Topology.Port(region, "directory"));

    public ServiceProcess EuApi { get; private set; } = null!;

    public ServiceProcess EuReplicator { get; private set; } = null!;

    public ServiceProcess UsEdge { get; private set; } = null!;

    public FakePeerReplicator EuCentral { get; private set; } = null!;

    public IEnumerable<string> ErrorLogs => _services.SelectMany(s => s.ErrorLogs);

    public async ValueTask InitializeAsync()
    {
        try
        {
            _topology = await LocalTopology.CreateAsync(postgres, redis, "mesh", RegionIds, firstRedisDatabase: 8);
            _topology.ReadyTimeout = TimeSpan.FromSeconds(180);
            var document = JsonNode.Parse(await File.ReadAllTextAsync(_topology.Path))!;
            _directoryDatabases = RegionIds.ToDictionary(r => r, r => document["regions"]![r]!["directoryDatabase"]!.GetValue<string>(), StringComparer.Ordinal);
            EuCentral = await FakePeerReplicator.StartAsync(_topology.Port("eu-central", "replicator"));
            await Task.WhenAll(new[] { "eu-west", "us-east" }.Select(r => Track(_topology.StartAsync("ShardDirectory", r))));
            EuApi = await Track(_topology.StartAsync("RegionService", "eu-west"));
            EuReplicator = await Track(_topology.StartAsync("Replicator", "eu-west",
                ("Replicator:AntiEntropyInterval", "00:00:00"), ("Replicator:InitialBackoff", "00:00:01"), ("Replicator:MaxBackoff", "00:00:05")));
            UsEdge = await Track(_topology.StartAsync("EdgeRouter", "us-east"));
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private async Task<ServiceProcess> Track(Task<ServiceProcess> starting)
    {
        var service = await starting;
        lock (_services)
        {
            _services.Add(service);
        }

        return service;
    }

    /// <summary>A gRPC channel to <paramref name="service"/> presenting <paramref name="credentials"/> (null: no certificate).</summary>
    public static GrpcChannel Channel(ServiceProcess service, TlsCredentials? credentials)
        => credentials is null ? TestPki.AnonymousChannel(service.BaseAddress) : TestPki.Channel(service.BaseAddress, credentials);

    /// <summary>The directory client of a region's directory as <paramref name="credentials"/>.</summary>
    public Contracts.Directory.Directory.DirectoryClient DirectoryClient(string region, TlsCredentials? credentials, out GrpcChannel channel)
    {
        channel = Channel(Directory(region), credentials);
        return new Contracts.Directory.Directory.DirectoryClient(channel);
    }

    /// <summary>Creates an eu user through eu-west's API as the us-east edge would (edge certificate); returns its id.</summary>
    public async Task<string> CreateEuUserAsync()
    {
        using var http = TestCredentials.CreateClient(EuApi.BaseAddress, TimeSpan.FromSeconds(30), certificate: TestPki.For("us-east", PeerRoles.Edge));
        using var response = await http.PostAsJsonAsync(new Uri("/v1/users", UriKind.Relative), new { residency = "eu" });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"create: {(int)response.StatusCode} {text}");
        using var json = JsonDocument.Parse(text);
        return json.RootElement.GetProperty("userId").GetString()!;
    }

    /// <summary>
    /// Every row count and version that a call could change, over every store of the cluster: the directories' users,
    /// map epochs and moves, and the shards' documents, counters, erasures and change logs.
    /// </summary>
    public async Task<string> SnapshotAsync()
    {
        var text = new StringBuilder();
        foreach (var (region, cs) in _directoryDatabases.Where(d => d.Key != "eu-central"))
        {
            text.Append(region).Append(": ").AppendLine(await ScalarTextAsync(cs, """
                SELECT (SELECT count(*) || '/' || coalesce(max(change_seq), 0) || '/' || coalesce(string_agg(user_id || residency || version_hlc || version_origin || deleted, ',' ORDER BY user_id), '') FROM directory_users)
                    || ' maps ' || (SELECT coalesce(string_agg(region || epoch, ',' ORDER BY region), '') FROM shard_maps)
                    || ' moves ' || (SELECT count(*) || ':' || coalesce(string_agg(move_id || phase, ',' ORDER BY move_id), '') FROM shard_moves)
                """));
        }

        foreach (var (shard, cs) in Topology.Shards.Where(s => s.Key.StartsWith("eu-west-", StringComparison.Ordinal)))
        {
            text.Append(shard).Append(": ").AppendLine(await ScalarTextAsync(cs, """
                SELECT (SELECT count(*) || '/' || coalesce(max(version_hlc), 0) FROM documents) || ' ' || (SELECT count(*) || '/' || coalesce(sum(incr), 0) FROM counters)
                    || ' ' || (SELECT count(*) FROM erased_users) || ' ' || (SELECT count(*) || '/' || coalesce(max(seq), 0) FROM change_log)
                """));
        }

        return text.ToString();
    }

    /// <summary>Documents of <paramref name="userId"/> on eu-west's shards.</summary>
    public Task<long> EuDocumentsAsync(string userId) => Topology.SumOverShardsAsync("eu-west", "SELECT count(*) FROM documents WHERE user_id = @u", userId);

    /// <summary>The residency eu-west's directory database holds for <paramref name="userId"/>.</summary>
    public async Task<string?> StoredResidencyAsync(string region, string userId)
    {
        await using var connection = new NpgsqlConnection(_directoryDatabases[region]);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT residency FROM directory_users WHERE user_id = @u", connection);
        command.Parameters.AddWithValue("u", userId);
        return await command.ExecuteScalarAsync() as string;
    }

    /// <summary>Sum of a counter on a service's <c>/metrics</c> over the series whose line contains <paramref name="label"/>.</summary>
    public static async Task<long> CounterAsync(ServiceProcess service, string name, string label)
    {
        using var http = TestCredentials.CreateClient(service.BaseAddress, TimeSpan.FromSeconds(10));
        return await EdgeProbes.CounterAsync(http, name, label);
    }

    /// <summary>Runs the built geoctl against this cluster with <c>GEO_PKI</c> = <paramref name="pki"/> (null: none, and no .geo/pki above the working directory).</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> GeoctlAsync(string? pki, params string[] args)
    {
        var run = await Geoctl.RunAsync([.. args, "--topology", Topology.Path],
            new GeoctlOptions { Pki = pki, WorkingDirectory = Path.GetTempPath(), Timeout = TimeSpan.FromSeconds(120) });
        return (run.ExitCode, run.Stdout, run.Stderr);
    }

    /// <summary>A folder laid out like .geo/pki whose "admin" certificate is really <paramref name="impostor"/> (the run's CA).</summary>
    public static string PkiWithAdmin(PeerIdentity impostor)
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("geo-pki-impostor-").FullName;
        File.Copy(Path.Combine(TestPki.Directory, GeoPki.CaCertificateFile), Path.Combine(dir, GeoPki.CaCertificateFile));
        _ = TestPki.For(impostor); // issued when the run has not made it yet
        File.Copy(GeoPki.CertificatePath(TestPki.Directory, impostor), GeoPki.CertificatePath(dir, PeerIdentity.Admin));
        File.Copy(GeoPki.KeyPath(TestPki.Directory, impostor), GeoPki.KeyPath(dir, PeerIdentity.Admin));
        return dir;
    }

    /// <summary>A complete .geo/pki of another CA (a look-alike deployment's admin certificate).</summary>
    public static string ForeignPki()
    {
        var dir = System.IO.Directory.CreateTempSubdirectory("geo-pki-foreign-").FullName;
        GeoPki.Provision(dir, RegionIds);
        return dir;
    }

    /// <summary>Credentials of another CA with the identity <paramref name="identity"/>.</summary>
    public static TlsCredentials Foreign(PeerIdentity identity) => TlsCredentials.FromDirectory(ForeignPkiCache.Value, identity);

    private static readonly Lazy<string> ForeignPkiCache = new(ForeignPki);

    private static async Task<string> ScalarTextAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToString(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture) ?? "";
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var service in Enumerable.Reverse(_services))
        {
            await service.DisposeAsync();
        }

        if (EuCentral is not null)
        {
            await EuCentral.DisposeAsync();
        }

        _topology?.Dispose();
    }
}
