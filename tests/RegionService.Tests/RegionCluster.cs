using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Testing;
using Geo.Testing.Services;
using Npgsql;

[assembly: AssemblyFixture(typeof(PostgresServer))]
[assembly: AssemblyFixture(typeof(RedisServer))]

namespace Geo.RegionService.Tests;

/// <summary>
/// Two regions of the local topology as real processes on loopback: eu-west (jurisdiction eu) and us-east (us), each
/// with its own ShardDirectory and directory database, two shard databases, and a RegionService; Redis shared with
/// one logical database per region. A third RegionService in eu-west runs with a concurrency limit of 1 for shedding.
/// </summary>
public sealed class RegionCluster(PostgresServer postgres, RedisServer redis) : IAsyncLifetime
{
    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("geo-region-tests-").FullName;

    public ServiceProcess EuDirectory { get; private set; } = null!;
    public ServiceProcess EuApi { get; private set; } = null!;
    public ServiceProcess EuApiLimited { get; private set; } = null!;
    public ServiceProcess UsDirectory { get; private set; } = null!;
    public ServiceProcess UsApi { get; private set; } = null!;
    public IReadOnlyDictionary<string, string> Shards { get; private set; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, string> DirectoryDatabases { get; private set; } = new Dictionary<string, string>();
    public RedisServer Redis => redis;
    public string TopologyPath => Path.Combine(_dir, "topology.json");

    public HttpClient Eu { get; } = TestCredentials.CreateClient(timeout: TimeSpan.FromSeconds(30));
    public HttpClient Us { get; } = TestCredentials.CreateClient(timeout: TimeSpan.FromSeconds(30));

    public async ValueTask InitializeAsync()
    {
        try
        {
            await StartAsync();
        }
        catch (Exception first) when (first is TimeoutException or InvalidOperationException or IOException)
        {
            // A start-up that loses a race for a port or a core on a shared machine gets one more try on fresh
            // ports and databases; the first failure is kept on stderr for whoever reads the log.
            await Console.Error.WriteLineAsync($"[region-cluster] start failed, retrying once: {first}");
            await StopAllAsync();
            await StartAsync();
        }
    }

    private async Task StartAsync()
    {
        var shards = new Dictionary<string, string>();
        foreach (var shard in new[] { "eu-west-0", "eu-west-1", "us-east-0", "us-east-1" })
        {
            shards[shard] = await postgres.CreateDatabaseAsync(shard.Replace('-', '_'));
        }

        Shards = shards;
        var euDirectoryDb = await postgres.CreateDatabaseAsync("dir_eu_west");
        var usDirectoryDb = await postgres.CreateDatabaseAsync("dir_us_east");
        DirectoryDatabases = new Dictionary<string, string> { ["eu-west"] = euDirectoryDb, ["us-east"] = usDirectoryDb };
        int euDirPort = FreePort.Next(), euApiPort = FreePort.Next(), euLimitedPort = FreePort.Next(), usDirPort = FreePort.Next(), usApiPort = FreePort.Next();

        var topology = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(ServiceProcess.RepositoryRoot(), "config", "topology.local.json")))!;
        Configure(topology["regions"]!["eu-west"]!, euApiPort, euDirPort, 2, euDirectoryDb, shards, "eu-west");
        Configure(topology["regions"]!["us-east"]!, usApiPort, usDirPort, 3, usDirectoryDb, shards, "us-east");
        await File.WriteAllTextAsync(TopologyPath, topology.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        Dictionary<string, string> Settings(string region, params (string, string)[] more)
        {
            var settings = new Dictionary<string, string> { ["Geo:Region"] = region, ["Geo:Topology"] = TopologyPath };
            foreach (var (k, v) in more)
            {
                settings[k] = v;
            }

            return settings;
        }

        EuDirectory = await ServiceProcess.StartAsync("ShardDirectory", euDirPort, Settings("eu-west"), http2Only: true);
        UsDirectory = await ServiceProcess.StartAsync("ShardDirectory", usDirPort, Settings("us-east"), http2Only: true);
        EuApi = await ServiceProcess.StartAsync("RegionService", euApiPort, Settings("eu-west"));
        UsApi = await ServiceProcess.StartAsync("RegionService", usApiPort, Settings("us-east"));
        EuApiLimited = await ServiceProcess.StartAsync("RegionService", euLimitedPort,
            Settings("eu-west", ("Geo:LoadShedding:MaxConcurrentRequests", "1"), ("Geo:LoadShedding:QueueLimit", "0")));
        Eu.BaseAddress = EuApi.BaseAddress;
        Us.BaseAddress = UsApi.BaseAddress;

        void Configure(JsonNode region, int apiPort, int dirPort, int redisDb, string directoryDb, Dictionary<string, string> all, string id)
        {
            region["api"] = new JsonArray($"https://127.0.0.1:{apiPort}");
            region["directory"] = $"https://127.0.0.1:{dirPort}";
            region["redis"] = $"{redis.ConnectionString},defaultDatabase={redisDb}";
            region["directoryDatabase"] = directoryDb;
            region["shards"] = new JsonObject
            {
                [$"{id}-0"] = all[$"{id}-0"],
                [$"{id}-1"] = all[$"{id}-1"],
            };
        }
    }

    /// <summary>Runs a scalar query on every shard of a region and sums the results.</summary>
    public async Task<long> SumOverShardsAsync(string region, string sql, object? userId = null)
    {
        long total = 0;
        foreach (var (id, cs) in Shards.Where(s => s.Key.StartsWith(region, StringComparison.Ordinal)))
        {
            await using var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            if (userId is not null)
            {
                command.Parameters.AddWithValue("u", userId);
            }

            total += Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }

        return total;
    }

    public IEnumerable<string> ErrorLogs => new[] { EuDirectory, UsDirectory, EuApi, UsApi, EuApiLimited }.SelectMany(s => s.ErrorLogs);

    /// <summary>Fails when any service logged at Error or Critical (an unexpected error is a defect even if the response looked right).</summary>
    public void AssertNoErrorsLogged()
    {
        var errors = ErrorLogs.ToArray();
        Assert.True(errors.Length == 0, "errors logged:\n" + string.Join("\n", errors));
    }

    public async ValueTask DisposeAsync()
    {
        Eu.Dispose();
        Us.Dispose();
        await StopAllAsync();
        System.IO.Directory.Delete(_dir, recursive: true);
    }

    private Task StopAllAsync() => ServiceProcess.DisposeAllAsync([EuApiLimited, UsApi, EuApi, UsDirectory, EuDirectory]);
}
