using Geo.Observability.Otlp;
using Geo.Testing;
using Geo.Testing.Services;

[assembly: AssemblyFixture(typeof(PostgresServer))]
[assembly: AssemblyFixture(typeof(RedisServer))]

namespace Geo.Observability;

/// <summary>
/// Two regions of one jurisdiction (eu-west, eu-central), each with its ShardDirectory, RegionService and Replicator as
/// real processes, and the eu-west edge; every process exports traces to <see cref="Otlp"/>, and the gRPC services serve
/// <c>/metrics</c> over HTTP/1.1 on a second port.
/// </summary>
public sealed class ObservedSystem(PostgresServer postgres, RedisServer redis) : IAsyncLifetime
{
    public static readonly string[] RegionIds = ["eu-west", "eu-central"];

    private readonly List<ServiceProcess> _services = [];
    private readonly Dictionary<(string Project, string Region), Uri> _metrics = [];
    private LocalTopology? _topology;

    public OtlpReceiver Otlp { get; } = new();

    public HttpClient Edge { get; private set; } = null!;

    public LocalTopology Topology => _topology!;

    /// <summary>Where each service serves Prometheus text over HTTP/1.1, by project and region.</summary>
    public IReadOnlyDictionary<(string Project, string Region), Uri> MetricsEndpoints => _metrics;

    public IEnumerable<string> Logs => _services.SelectMany(s => s.Logs);

    /// <summary>Every service process of the system.</summary>
    public IReadOnlyList<ServiceProcess> Services => _services;

    public async ValueTask InitializeAsync()
    {
        try
        {
            _topology = await LocalTopology.CreateAsync(postgres, redis, "obs", RegionIds, firstRedisDatabase: 10);
            _topology.ReadyTimeout = TimeSpan.FromSeconds(180);
            await Task.WhenAll(RegionIds.Select(r => StartAsync("ShardDirectory", r)));
            await Task.WhenAll(RegionIds.Select(r => StartAsync("RegionService", r)));
            await Task.WhenAll(RegionIds.Select(r => StartAsync("Replicator", r,
                ("Replicator:PollInterval", "00:00:00.050"),
                ("Replicator:HeartbeatInterval", "00:00:00.200"))));
            var edge = await StartAsync("EdgeRouter", "eu-west");
            Edge = ServiceClients.For(edge.BaseAddress);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private async Task<ServiceProcess> StartAsync(string project, string region, params (string Key, string Value)[] more)
    {
        var settings = more.Concat(Otlp.Settings).ToList();
        // Every service serves /metrics on its own HTTPS port; the harness's certificate is accepted by the internal ones.
        var metrics = new Uri($"https://127.0.0.1:{Topology.Port(region, ServiceProcess.RoleOf[project])}");
        var service = await Topology.StartAsync(project, region, [.. settings]);
        lock (_services)
        {
            _services.Add(service);
            _metrics[(project, region)] = metrics;
        }

        return service;
    }

    public async ValueTask DisposeAsync()
    {
        Edge?.Dispose();
        foreach (var service in Enumerable.Reverse(_services))
        {
            await service.DisposeAsync();
        }

        _topology?.Dispose();
        await Otlp.DisposeAsync();
    }
}

[CollectionDefinition(Name)]
public sealed class ObservedSystemCollection : ICollectionFixture<ObservedSystem>
{
    public const string Name = "observed system";
}
