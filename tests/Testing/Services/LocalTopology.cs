using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Dev;
using Npgsql;

namespace Geo.Testing.Services;

/// <summary>
/// A subset of the regions of <c>config/topology.local.json</c> rewritten for a test run: free loopback ports for every
/// service, throwaway shard and directory databases on the test Postgres, one logical Redis database per region. The
/// regions left out are removed from the latency table too, so nothing is ever sent to the fixed ports of a local
/// <c>./geo up</c>. Starts the services of a region as real processes with the matching settings.
/// </summary>
public sealed class LocalTopology : IDisposable
{
    private readonly string _dir;
    private readonly Dictionary<(string Region, string Role), int> _ports;

    private LocalTopology(string dir, IReadOnlyList<string> regions, Dictionary<(string, string), int> ports, IReadOnlyDictionary<string, string> shards)
    {
        _dir = dir;
        Regions = regions;
        _ports = ports;
        Shards = shards;
    }

    /// <summary>The regions kept, in the order given.</summary>
    public IReadOnlyList<string> Regions { get; }

    /// <summary>Shard id (<c>{region}-{n}</c>) → connection string.</summary>
    public IReadOnlyDictionary<string, string> Shards { get; }

    /// <summary>How long <see cref="StartAsync"/> waits for a service to be ready. Default 60 s.</summary>
    public TimeSpan ReadyTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The written topology file (<c>Geo:Topology</c>).</summary>
    public string Path => System.IO.Path.Combine(_dir, "topology.json");

    /// <summary>Writes the topology for <paramref name="regions"/>: ports, databases (prefixed by <paramref name="name"/>), Redis databases from <paramref name="firstRedisDatabase"/>.</summary>
    public static async Task<LocalTopology> CreateAsync(PostgresServer postgres, RedisServer redis, string name, IReadOnlyList<string> regions, int firstRedisDatabase = 4)
    {
        var dir = Directory.CreateTempSubdirectory($"geo-{name}-").FullName;
        var topology = JsonNode.Parse(await File.ReadAllTextAsync(System.IO.Path.Combine(ServiceProcess.RepositoryRoot(), "config", "topology.local.json")))!;
        var all = topology["regions"]!.AsObject();
        foreach (var dropped in all.Select(r => r.Key).Where(r => !regions.Contains(r)).ToList())
        {
            all.Remove(dropped);
            topology["latencyMs"]!.AsObject().Remove(dropped);
            foreach (var (_, row) in topology["latencyMs"]!.AsObject())
            {
                row!.AsObject().Remove(dropped);
            }
        }

        var ports = new Dictionary<(string, string), int>();
        var shards = new Dictionary<string, string>(StringComparer.Ordinal);
        var redisDb = firstRedisDatabase;
        foreach (var region in regions)
        {
            var node = all[region] ?? throw new ArgumentException($"'{region}' is not a region of topology.local.json", nameof(regions));
            foreach (var role in GeoService.All.Select(s => s.TopologyKey))
            {
                ports[(region, role)] = FreePort.Next();
            }

            var slug = region.Replace('-', '_');
            node["api"] = new JsonArray($"https://127.0.0.1:{ports[(region, "api")]}");
            node["directory"] = $"https://127.0.0.1:{ports[(region, "directory")]}";
            node["edge"] = $"https://127.0.0.1:{ports[(region, "edge")]}";
            node["replicator"] = $"https://127.0.0.1:{ports[(region, "replicator")]}";
            node["redis"] = $"{redis.ConnectionString},defaultDatabase={redisDb++}";
            node["directoryDatabase"] = await postgres.CreateDatabaseAsync($"{name}_dir_{slug}");
            var regionShards = new JsonObject();
            foreach (var shard in new[] { $"{region}-0", $"{region}-1" })
            {
                shards[shard] = await postgres.CreateDatabaseAsync($"{name}_{shard.Replace('-', '_')}");
                regionShards[shard] = shards[shard];
            }

            node["shards"] = regionShards;
        }

        var result = new LocalTopology(dir, regions, ports, shards);
        await File.WriteAllTextAsync(result.Path, topology.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return result;
    }

    /// <summary>The loopback port of a region's service (<c>api</c>, <c>directory</c>, <c>edge</c>, <c>replicator</c>).</summary>
    public int Port(string region, string role) => _ports[(region, role)];

    /// <summary><c>Geo:Region</c> and <c>Geo:Topology</c> for <paramref name="region"/>, plus <paramref name="more"/>.</summary>
    public Dictionary<string, string> Settings(string region, params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal) { ["Geo:Region"] = region, ["Geo:Topology"] = Path };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>Starts <paramref name="project"/> of <paramref name="region"/> on its topology port and waits until ready.</summary>
    public Task<ServiceProcess> StartAsync(string project, string region, params (string Key, string Value)[] more)
        => ServiceProcess.StartAsync(project, Port(region, GeoService.Of(project).TopologyKey), Settings(region, more),
            http2Only: GeoService.Of(project).Http2Only, readyTimeout: ReadyTimeout);

    /// <summary>Sums a scalar query (parameter <c>@u</c> = <paramref name="userId"/>) over the shards of a region.</summary>
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

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
