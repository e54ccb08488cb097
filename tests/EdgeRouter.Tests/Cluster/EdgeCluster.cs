using Geo.Testing;
using Geo.Testing.Services;

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

    private readonly Dictionary<string, ServiceProcess> _directories = [];
    private readonly Dictionary<string, ServiceProcess> _apis = [];
    private LocalTopology? _topology;

    public ServiceProcess Edge { get; private set; } = null!;
    public ServiceProcess LimitedEdge { get; private set; } = null!;
    public string TopologyPath => _topology!.Path;

    /// <summary>Client of the main edge; the only way tests reach the regions.</summary>
    public HttpClient Client { get; } = TestCredentials.CreateClient(timeout: TimeSpan.FromSeconds(30));

    public HttpClient LimitedClient { get; } = TestCredentials.CreateClient(timeout: TimeSpan.FromSeconds(30));

    public ServiceProcess Directory(string region) => _directories[region];

    public ServiceProcess Api(string region) => _apis[region];

    /// <summary>A client of one region's API directly (not through the edge), made here so credentials reach it in one place.</summary>
    public HttpClient ApiClient(string region) => TestCredentials.CreateClient(Api(region).BaseAddress, TimeSpan.FromSeconds(30));

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
        _topology = await LocalTopology.CreateAsync(postgres, redis, "edge", RegionIds);
        _topology.ReadyTimeout = TimeSpan.FromSeconds(180); // two cores shared with other test runs: starts have taken over 60 s
        foreach (var region in RegionIds)
        {
            _directories[region] = await _topology.StartAsync("ShardDirectory", region);
        }

        await Task.WhenAll(RegionIds.Select(async region => _apis[region] = await _topology.StartAsync("RegionService", region)));

        Edge = await _topology.StartAsync("EdgeRouter", "us-east",
            ("Geo:Edge:HealthCheckInterval", "00:00:01"),
            ("Geo:Edge:HealthCheckTimeout", "00:00:01"),
            ("Geo:Edge:PassiveReactivationPeriod", "00:00:02"),
            ("Geo:Edge:ClientRequestsPerSecond", "100000"),
            ("Geo:Edge:ClientBurst", "100000"),
            ("Geo:Edge:UserRequestsPerSecond", "100000"),
            ("Geo:Edge:UserBurst", "100000"));
        LimitedEdge = await ServiceProcess.StartAsync("EdgeRouter", FreePort.Next(), _topology.Settings("us-east",
            ("Geo:Edge:ClientRequestsPerSecond", "1"),
            ("Geo:Edge:ClientBurst", "5"),
            ("Geo:Edge:UserRequestsPerSecond", "1"),
            ("Geo:Edge:UserBurst", "3")), readyTimeout: _topology.ReadyTimeout);
        Client.BaseAddress = Edge.BaseAddress;
        LimitedClient.BaseAddress = LimitedEdge.BaseAddress;
    }

    /// <summary>
    /// Starts every directory and regional API that a test stopped, so the next test begins with all regions up — as
    /// both edges see them: the limited edge probes every 5 s and keeps a region out after failed probes, and a test
    /// that uses it right after a restart would otherwise be failed over to a region that never heard of its user.
    /// </summary>
    public async Task RestoreAsync()
    {
        var stopped = _directories.Values.Concat(_apis.Values).Where(s => !s.IsRunning).ToList();
        foreach (var service in stopped)
        {
            await service.StartAsync(TimeSpan.FromSeconds(60));
        }

        if (stopped.Count > 0)
        {
            await WaitUntilEdgesSeeEveryRegionAsync();
        }
    }

    private async Task WaitUntilEdgesSeeEveryRegionAsync()
    {
        await EdgeProbes.WaitUntilRoutedHomeAsync(Client, RegionIds, TimeSpan.FromSeconds(30));
        await EdgeProbes.WaitUntilRoutedHomeAsync(LimitedClient, RegionIds, TimeSpan.FromSeconds(30)); // its 429s are retried by the wait
    }

    /// <summary>Requests a regional API has answered on its <c>/v1</c> routes, from its own Prometheus metrics.</summary>
    public Task<long> ApiRequestCountAsync(string region) => EdgeProbes.ApiRequestCountAsync(Api(region).BaseAddress);

    /// <summary>Sums a scalar query over both shards of a region.</summary>
    public Task<long> SumOverShardsAsync(string region, string sql, string userId) => _topology!.SumOverShardsAsync(region, sql, userId);

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

        try
        {
            await ServiceProcess.DisposeAllAsync(all);
        }
        finally
        {
            _topology?.Dispose();
        }
    }
}

/// <summary>Tests of this collection share one <see cref="EdgeCluster"/> and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class EdgeClusterCollection : ICollectionFixture<EdgeCluster>
{
    public const string Name = "edge cluster";
}
