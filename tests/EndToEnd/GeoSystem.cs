using Geo.Testing;
using Geo.Testing.Faults;
using Geo.Testing.Services;

[assembly: AssemblyFixture(typeof(PostgresServer))]
[assembly: AssemblyFixture(typeof(RedisServer))]

namespace Geo.EndToEnd;

/// <summary>
/// The system as a user meets it: three regions of the local topology — eu-west and eu-central (jurisdiction eu),
/// us-east (us) — each with its ShardDirectory, RegionService and Replicator as real processes on real Postgres and
/// Redis, and the us-east EdgeRouter in front (plus a second us-east edge with tight rate limits). Tests drive it only
/// through edge HTTP; they stop and start regional APIs to cause failovers.
/// </summary>
public sealed class GeoSystem(PostgresServer postgres, RedisServer redis) : IAsyncLifetime
{
    public static readonly string[] RegionIds = ["eu-west", "eu-central", "us-east"];

    /// <summary>The region whose services run with a skewed wall clock (<c>Geo:Clock:OffsetSeconds</c>), within the 5 s skew bound.</summary>
    public const string SkewedRegion = "eu-central";

    /// <summary>How far <see cref="SkewedRegion"/>'s clock is ahead: 2 s, or <c>GEO_TEST_SKEW_SECONDS</c> (the campaign's negative control sets it beyond the bound).</summary>
    public static readonly double SkewSeconds = double.TryParse(Environment.GetEnvironmentVariable("GEO_TEST_SKEW_SECONDS"), System.Globalization.NumberStyles.Float,
        System.Globalization.CultureInfo.InvariantCulture, out var skew) ? skew : 2;

    private readonly List<ServiceProcess> _services = [];
    private readonly Dictionary<string, ServiceProcess> _apis = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Project, string Region), ServiceProcess> _byKind = [];
    private readonly List<ServiceProcess> _edges = [];
    private readonly Dictionary<string, RegionLinks> _links = new(StringComparer.Ordinal);
    private LocalTopology? _topology;

    public LocalTopology Topology => _topology!;

    /// <summary>The fault proxies on the links of eu-west and eu-central (Postgres, Redis, directory, replicator); they pass traffic unless a test says otherwise.</summary>
    public RegionLinks Links(string region) => _links[region];

    /// <summary>The Postgres server of every region (one server, a database per shard).</summary>
    public PostgresServer Postgres => postgres;

    /// <summary>The Redis server of every region (one server, a logical database per region).</summary>
    public RedisServer Redis => redis;

    /// <summary>The us-east edge (generous limits, 1 s health probes).</summary>
    public HttpClient Edge { get; } = TestCredentials.CreateClient(timeout: TimeSpan.FromSeconds(30));

    /// <summary>A second us-east edge: 3 requests of burst per user, then 1 per second.</summary>
    public HttpClient LimitedEdge { get; } = TestCredentials.CreateClient(timeout: TimeSpan.FromSeconds(30));

    public ServiceProcess Api(string region) => _apis[region];

    /// <summary>A region's ShardDirectory, RegionService or Replicator process.</summary>
    public ServiceProcess Service(string project, string region) => _byKind[(project, region)];

    /// <summary>The two generous us-east edges (the first is <see cref="Edge"/>'s); the edge pool spreads over both.</summary>
    public IReadOnlyList<ServiceProcess> Edges => _edges;

    /// <summary>A client over both generous edges, as a load balancer in front of them (<see cref="EdgePool"/>).</summary>
    public (HttpClient Client, EdgePool Pool) CreateEdgePoolClient() => EdgePool.Create(() => [.. _edges.Select(e => e.BaseAddress)]);

    public async ValueTask InitializeAsync()
    {
        try
        {
            await StartAsync();
        }
        catch
        {
            // xunit does not dispose a fixture whose initialization threw: stop what did start.
            await DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync()
    {
        // Generous: on two cores shared with other test runs a .NET service has taken over a minute to become ready.
        _topology = await LocalTopology.CreateAsync(postgres, redis, "e2e", RegionIds);
        _topology.ReadyTimeout = TimeSpan.FromSeconds(180);
        foreach (var region in new[] { "eu-west", "eu-central" })
        {
            _links[region] = await RegionLinks.InsertAsync(_topology.Path, region);
        }

        // Directories first: every other service reads users and shard maps from them.
        await Task.WhenAll(RegionIds.Select(r => TrackAsync("ShardDirectory", r, _topology.StartAsync("ShardDirectory", r, Skew(r)))));

        // Then the APIs, which migrate the shards; then the replicators of every region at once. (Started together, a
        // replicator's migration of the same shards timed out under load and it was not ready within 60 s.)
        var apis = await Task.WhenAll(RegionIds.Select(r => TrackAsync("RegionService", r, _topology.StartAsync("RegionService", r, Skew(r)))));
        for (var i = 0; i < RegionIds.Length; i++)
        {
            _apis[RegionIds[i]] = apis[i];
        }

        await Task.WhenAll(RegionIds.Select(r => TrackAsync("Replicator", r, _topology.StartAsync("Replicator", r,
        [
            ("Replicator:PollInterval", "00:00:00.050"),
            ("Replicator:HeartbeatInterval", "00:00:00.200"),
            ("Replicator:InitialBackoff", "00:00:00.100"),
            ("Replicator:MaxBackoff", "00:00:01"),
            ("Replicator:BreakDuration", "00:00:01"),
            .. Skew(r),
        ]))));

        (string, string)[] generous =
        [
            ("Geo:Edge:HealthCheckInterval", "00:00:01"),
            ("Geo:Edge:HealthCheckTimeout", "00:00:01"),
            ("Geo:Edge:PassiveReactivationPeriod", "00:00:02"),
            ("Geo:Edge:ClientRequestsPerSecond", "100000"),
            ("Geo:Edge:ClientBurst", "100000"),
            ("Geo:Edge:UserRequestsPerSecond", "100000"),
            ("Geo:Edge:UserBurst", "100000"),
        ];
        var edge = await TrackAsync(_topology.StartAsync("EdgeRouter", "us-east", generous));
        var second = await TrackAsync(ServiceProcess.StartAsync("EdgeRouter", FreePort.Next(), _topology.Settings("us-east", generous), readyTimeout: _topology.ReadyTimeout));
        _edges.AddRange([edge, second]);
        var limited = await TrackAsync(ServiceProcess.StartAsync("EdgeRouter", FreePort.Next(), _topology.Settings("us-east",
            ("Geo:Edge:UserRequestsPerSecond", "1"),
            ("Geo:Edge:UserBurst", "3")), readyTimeout: _topology.ReadyTimeout));
        Edge.BaseAddress = edge.BaseAddress;
        LimitedEdge.BaseAddress = limited.BaseAddress;
    }

    private static (string, string)[] Skew(string region)
        => region == SkewedRegion ? [("Geo:Clock:OffsetSeconds", SkewSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture))] : [];

    /// <summary>Records a started service at once, so a sibling start that fails cannot leave it running after disposal.</summary>
    private async Task<ServiceProcess> TrackAsync(Task<ServiceProcess> starting)
    {
        var service = await starting;
        lock (_services)
        {
            _services.Add(service);
        }

        return service;
    }

    private async Task<ServiceProcess> TrackAsync(string project, string region, Task<ServiceProcess> starting)
    {
        var service = await TrackAsync(starting);
        lock (_services)
        {
            _byKind[(project, region)] = service;
        }

        return service;
    }

    /// <summary>Starts every process a test stopped and waits until the edge routes to each region again.</summary>
    public async Task RestoreAsync()
    {
        var stopped = _services.Where(a => !a.IsRunning).ToList();
        foreach (var api in stopped)
        {
            await api.StartAsync(Topology.ReadyTimeout);
        }

        if (stopped.Count > 0)
        {
            await EdgeProbes.WaitUntilRoutedHomeAsync(Edge, RegionIds, TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>Every line logged by any process of the system since it started (the erasure scan reads them all).</summary>
    public IEnumerable<string> AllLogs => _services.SelectMany(s => s.Logs);

    /// <summary>Error or Critical lines logged by any process of the system.</summary>
    public IEnumerable<string> ErrorLogs => _services.SelectMany(s => s.ErrorLogs);

    public async ValueTask DisposeAsync()
    {
        Edge.Dispose();
        LimitedEdge.Dispose();
        if (Environment.GetEnvironmentVariable("GEO_TEST_LOGS") is { Length: > 0 } logFile)
        {
            await File.WriteAllLinesAsync(logFile, _services.SelectMany(s => s.Logs));
        }

        try
        {
            await ServiceProcess.DisposeAllAsync(_services);
        }
        finally
        {
            foreach (var links in _links.Values)
            {
                await links.DisposeAsync();
            }

            _topology?.Dispose();
        }
    }
}

/// <summary>Tests of this collection share one <see cref="GeoSystem"/> and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class GeoSystemCollection : ICollectionFixture<GeoSystem>
{
    public const string Name = "geo system";
}
