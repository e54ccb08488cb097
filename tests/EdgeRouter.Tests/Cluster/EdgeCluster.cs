using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Testing;
using Geo.Testing.Services;
using Npgsql;

[assembly: AssemblyFixture(typeof(PostgresServer))]
[assembly: AssemblyFixture(typeof(RedisServer))]

namespace Geo.EdgeRouter.Tests.Cluster;

/// <summary>
/// Three regions of the local topology as real processes on loopback — eu-west and eu-central (jurisdiction eu) and
/// us-east (us), each with its ShardDirectory, two shard databases and a RegionService — and two EdgeRouters in us-east:
/// one with generous limits and fast health checks, one with tight rate limits. us-west is left out of the topology so
/// nothing is ever sent to the fixed ports of a local <c>./geo up</c>.
/// </summary>
public sealed class EdgeCluster(PostgresServer postgres, RedisServer redis) : IAsyncLifetime
{
    public static readonly string[] RegionIds = ["eu-west", "eu-central", "us-east"];

    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("geo-edge-tests-").FullName;
    private readonly Dictionary<string, ServiceProcess> _directories = [];
    private readonly Dictionary<string, ServiceProcess> _apis = [];

    public ServiceProcess Edge { get; private set; } = null!;
    public ServiceProcess LimitedEdge { get; private set; } = null!;
    public IReadOnlyDictionary<string, string> Shards { get; private set; } = new Dictionary<string, string>();
    public string TopologyPath => Path.Combine(_dir, "topology.json");

    /// <summary>Client of the main edge; the only way tests reach the regions.</summary>
    public HttpClient Client { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public HttpClient LimitedClient { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public ServiceProcess Directory(string region) => _directories[region];

    public ServiceProcess Api(string region) => _apis[region];

    public async ValueTask InitializeAsync()
    {
        try
        {
            await StartAsync();
        }
        catch
        {
            // xunit does not dispose a fixture whose initialization threw: stop what did start, or it outlives the run.
            await DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync()
    {
        var shards = new Dictionary<string, string>();
        foreach (var region in RegionIds)
        {
            foreach (var shard in new[] { $"{region}-0", $"{region}-1" })
            {
                shards[shard] = await postgres.CreateDatabaseAsync("edge_" + shard.Replace('-', '_'));
            }
        }

        Shards = shards;
        var topology = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(ServiceProcess.RepositoryRoot(), "config", "topology.local.json")))!;
        topology["regions"]!.AsObject().Remove("us-west");
        topology["latencyMs"]!.AsObject().Remove("us-west");
        foreach (var (_, row) in topology["latencyMs"]!.AsObject())
        {
            row!.AsObject().Remove("us-west");
        }

        var ports = new Dictionary<string, (int Api, int Directory, int Edge)>();
        var redisDb = 4;
        foreach (var region in RegionIds)
        {
            var port = (FreePort.Next(), FreePort.Next(), FreePort.Next());
            ports[region] = port;
            var node = topology["regions"]![region]!;
            node["api"] = new JsonArray($"http://127.0.0.1:{port.Item1}");
            node["directory"] = $"http://127.0.0.1:{port.Item2}";
            node["edge"] = $"http://127.0.0.1:{port.Item3}";
            node["redis"] = $"{redis.ConnectionString},defaultDatabase={redisDb++}";
            node["directoryDatabase"] = await postgres.CreateDatabaseAsync("edge_dir_" + region.Replace('-', '_'));
            node["shards"] = new JsonObject { [$"{region}-0"] = shards[$"{region}-0"], [$"{region}-1"] = shards[$"{region}-1"] };
        }

        await File.WriteAllTextAsync(TopologyPath, topology.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        foreach (var region in RegionIds)
        {
            _directories[region] = await ServiceProcess.StartAsync("ShardDirectory", ports[region].Directory, Settings(region), http2Only: true);
        }

        await Task.WhenAll(RegionIds.Select(async region => _apis[region] = await ServiceProcess.StartAsync("RegionService", ports[region].Api, Settings(region))));

        Edge = await ServiceProcess.StartAsync("EdgeRouter", ports["us-east"].Edge, Settings("us-east",
            ("Geo:Edge:HealthCheckInterval", "00:00:01"),
            ("Geo:Edge:HealthCheckTimeout", "00:00:01"),
            ("Geo:Edge:PassiveReactivationPeriod", "00:00:02"),
            ("Geo:Edge:ClientRequestsPerSecond", "100000"),
            ("Geo:Edge:ClientBurst", "100000"),
            ("Geo:Edge:UserRequestsPerSecond", "100000"),
            ("Geo:Edge:UserBurst", "100000")));
        LimitedEdge = await ServiceProcess.StartAsync("EdgeRouter", FreePort.Next(), Settings("us-east",
            ("Geo:Edge:ClientRequestsPerSecond", "1"),
            ("Geo:Edge:ClientBurst", "5"),
            ("Geo:Edge:UserRequestsPerSecond", "1"),
            ("Geo:Edge:UserBurst", "3")));
        Client.BaseAddress = Edge.BaseAddress;
        LimitedClient.BaseAddress = LimitedEdge.BaseAddress;

        Dictionary<string, string> Settings(string region, params (string Key, string Value)[] more)
        {
            var settings = new Dictionary<string, string> { ["Geo:Region"] = region, ["Geo:Topology"] = TopologyPath };
            foreach (var (key, value) in more)
            {
                settings[key] = value;
            }

            return settings;
        }
    }

    /// <summary>Starts every regional API that a test stopped, so the next test begins with all regions up.</summary>
    public async Task RestoreAsync()
    {
        var stopped = _apis.Values.Where(a => !a.IsRunning).ToList();
        foreach (var api in stopped)
        {
            await api.StartAsync(TimeSpan.FromSeconds(60));
        }

        if (stopped.Count > 0)
        {
            await WaitUntilEdgeSeesEveryRegionAsync();
        }
    }

    /// <summary>
    /// Until the edge's health checks notice the restarted APIs it still fails over; a create pinned to each region that
    /// is served there without failover shows the edge routes to every region again (at most 30 s).
    /// </summary>
    private async Task WaitUntilEdgeSeesEveryRegionAsync()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var pending = new HashSet<string>(RegionIds);
        while (pending.Count > 0 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            foreach (var region in pending.ToList())
            {
                var residency = region.StartsWith("eu", StringComparison.Ordinal) ? "eu" : "us";
                using var response = await Client.PostAsync(new Uri("/v1/users", UriKind.Relative),
                    Http.Json($"{{\"residency\":\"{residency}\",\"homeRegion\":\"{region}\"}}"));
                if (response.IsSuccessStatusCode && Http.Header(response, "Geo-Region") == region && Http.Header(response, "Geo-Failover") is null)
                {
                    pending.Remove(region);
                }
            }

            if (pending.Count > 0)
            {
                await Task.Delay(200);
            }
        }

        if (pending.Count > 0)
        {
            throw new TimeoutException($"the edge still does not route to {string.Join(", ", pending)} 30 s after a restart");
        }
    }

    /// <summary>Requests a regional API has answered on its <c>/v1</c> routes, from its own Prometheus metrics.</summary>
    public async Task<long> ApiRequestCountAsync(string region)
    {
        using var http = new HttpClient { BaseAddress = Api(region).BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        return text.Split('\n')
            .Where(l => l.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal) && l.Contains("http_route=\"/v1", StringComparison.Ordinal))
            .Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }

    /// <summary>Sums a scalar query over both shards of a region.</summary>
    public async Task<long> SumOverShardsAsync(string region, string sql, string userId)
    {
        long total = 0;
        foreach (var (_, cs) in Shards.Where(s => s.Key.StartsWith(region + "-", StringComparison.Ordinal)))
        {
            await using var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("u", userId);
            total += Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }

        return total;
    }

    /// <summary>Error or Critical lines the edges logged.</summary>
    public IEnumerable<string> EdgeErrorLogs => Edge.ErrorLogs.Concat(LimitedEdge.ErrorLogs);

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        LimitedClient.Dispose();
        var all = new[] { LimitedEdge, Edge }.Where(e => e is not null).Concat(_apis.Values).Concat(_directories.Values).Where(s => s is not null).ToList();
        if (Environment.GetEnvironmentVariable("GEO_TEST_LOGS") is { Length: > 0 } logFile)
        {
            await File.WriteAllLinesAsync(logFile, all.SelectMany(s => s.Logs));
        }

        foreach (var service in all)
        {
            await service.DisposeAsync();
        }

        if (System.IO.Directory.Exists(_dir))
        {
            System.IO.Directory.Delete(_dir, recursive: true);
        }
    }
}

/// <summary>Tests of this collection share one <see cref="EdgeCluster"/> and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class EdgeClusterCollection : ICollectionFixture<EdgeCluster>
{
    public const string Name = "edge cluster";
}
