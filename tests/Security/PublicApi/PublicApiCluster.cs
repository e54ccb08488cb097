using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Testing;
using Geo.Testing.Services;
using Npgsql;

namespace Geo.Security.Tests.PublicApi;

/// <summary>
/// Two regions of the local topology as real processes — eu-west (jurisdiction eu) and us-east (us), each with its
/// ShardDirectory and RegionService — and two us-east EdgeRouters (one generous, one with a client burst of 3). Every
/// service trusts the test run's development issuer (<see cref="TestCredentials"/>).
/// </summary>
/// <remarks>
/// Negative control: with <c>GEO_SECURITY_AUTH_OFF=1</c> in the environment the services start with
/// <c>Geo:Auth:Enabled=false</c>; every refusal test must then fail (docs/security.md says how it was checked).
/// </remarks>
public sealed class PublicApiCluster(PostgresServer postgres, RedisServer redis) : IAsyncLifetime
{
    public static readonly string[] RegionIds = ["eu-west", "us-east"];

    private readonly List<ServiceProcess> _services = [];
    private readonly Dictionary<string, ServiceProcess> _apis = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServiceProcess> _directories = new(StringComparer.Ordinal);
    private LocalTopology? _topology;
    private Dictionary<string, string> _directoryDatabases = new(StringComparer.Ordinal);

    public ServiceProcess Edge { get; private set; } = null!;
    public ServiceProcess LimitedEdge { get; private set; } = null!;
    public ServiceProcess Api(string region) => _apis[region];

    public ServiceProcess Directory(string region) => _directories[region];

    /// <summary>Every service process (for log checks).</summary>
    public IReadOnlyList<ServiceProcess> Services => _services;

    /// <summary>The base address of a target: <c>edge</c> or a region's API.</summary>
    public Uri Target(string target) => target == "edge" ? Edge.BaseAddress : Api(target).BaseAddress;

    /// <summary>The harness client (all-scopes service token) of a target.</summary>
    public HttpClient Trusted(string target) => TestCredentials.CreateClient(Target(target));

    public async ValueTask InitializeAsync()
    {
        try
        {
            await StartAsync();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private async Task StartAsync()
    {
        _topology = await LocalTopology.CreateAsync(postgres, redis, "sec", RegionIds, firstRedisDatabase: 8);
        _topology.ReadyTimeout = TimeSpan.FromSeconds(180);
        var topology = JsonNode.Parse(await File.ReadAllTextAsync(_topology.Path))!;
        _directoryDatabases = RegionIds.ToDictionary(r => r, r => (string)topology["regions"]![r]!["directoryDatabase"]!, StringComparer.Ordinal);
        var off = Environment.GetEnvironmentVariable("GEO_SECURITY_AUTH_OFF") == "1"
            ? new[] { ("Geo:Auth:Enabled", "false") }
            : [];

        var directories = await Task.WhenAll(RegionIds.Select(r => Track(_topology.StartAsync("ShardDirectory", r))));
        for (var i = 0; i < RegionIds.Length; i++)
        {
            _directories[RegionIds[i]] = directories[i];
        }

        var apis = await Task.WhenAll(RegionIds.Select(r => Track(_topology.StartAsync("RegionService", r, off))));
        for (var i = 0; i < RegionIds.Length; i++)
        {
            _apis[RegionIds[i]] = apis[i];
        }

        Edge = await Track(_topology.StartAsync("EdgeRouter", "us-east",
        [
            ("Geo:Edge:ClientRequestsPerSecond", "100000"), ("Geo:Edge:ClientBurst", "100000"),
            ("Geo:Edge:UserRequestsPerSecond", "100000"), ("Geo:Edge:UserBurst", "100000"), .. off,
        ]));
        LimitedEdge = await Track(ServiceProcess.StartAsync("EdgeRouter", FreePort.Next(), _topology.Settings("us-east",
        [
            ("Geo:Edge:ClientRequestsPerSecond", "1"), ("Geo:Edge:ClientBurst", "3"),
            ("Geo:Edge:UserRequestsPerSecond", "100000"), ("Geo:Edge:UserBurst", "100000"), .. off,
        ]), readyTimeout: _topology.ReadyTimeout));
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

    /// <summary>Creates a user through the edge with the harness's trusted token; returns its id.</summary>
    public async Task<string> CreateUserAsync(string residency)
    {
        using var client = Trusted("edge");
        using var response = await client.PostAsync(new Uri("/v1/users", UriKind.Relative), Json($"{{\"residency\":\"{residency}\"}}"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"create: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("userId").GetString()!;
    }

    /// <summary>Writes a document and a counter of a user with the harness's trusted token, so refusals have data to protect.</summary>
    public async Task SeedAsync(string userId, string collection, string key)
    {
        using var client = Trusted("edge");
        using var put = await client.PutAsync(new Uri($"/v1/users/{userId}/docs/{collection}/{key}", UriKind.Relative), Json("{\"secret\":1}"));
        Assert.True(put.IsSuccessStatusCode, $"seed put: {(int)put.StatusCode} {await put.Content.ReadAsStringAsync()}");
        using var counter = await client.PostAsync(new Uri($"/v1/users/{userId}/counters/visits", UriKind.Relative), Json("{\"delta\":1}"));
        Assert.True(counter.IsSuccessStatusCode, $"seed counter: {(int)counter.StatusCode} {await counter.Content.ReadAsStringAsync()}");
    }

    /// <summary>
    /// A fingerprint of every store the services write: every row of every table of every shard and directory database
    /// (md5 of the ordered rows). Equal fingerprints before and after a request mean it changed nothing.
    /// </summary>
    public async Task<string> FingerprintAsync()
    {
        var parts = new StringBuilder();
        foreach (var (name, cs) in _topology!.Shards.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            parts.Append(name).Append(':').Append(await TablesAsync(cs, ["documents", "counters", "change_log", "erased_users"])).Append('\n');
        }

        foreach (var (region, cs) in _directoryDatabases.OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            parts.Append("directory ").Append(region).Append(':').Append(await TablesAsync(cs, ["directory_users", "directory_create_keys"])).Append('\n');
        }

        return parts.ToString();
    }

    private static async Task<string> TablesAsync(string connectionString, string[] tables)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        var result = new StringBuilder();
        foreach (var table in tables)
        {
            await using var command = new NpgsqlCommand($"SELECT count(*) || '/' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM {table} t", connection);
            result.Append(table).Append('=').Append(await command.ExecuteScalarAsync()).Append(' ');
        }

        return result.ToString();
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>A request carrying exactly <paramref name="token"/> (none when null).</summary>
    public static HttpRequestMessage Request(HttpMethod method, string path, string? token, string? json = null)
    {
        var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (json is not null)
        {
            request.Content = Json(json);
        }

        return request;
    }

    public async ValueTask DisposeAsync()
    {
        if (Environment.GetEnvironmentVariable("GEO_TEST_LOGS") is { Length: > 0 } logFile)
        {
            await File.WriteAllLinesAsync(logFile, _services.SelectMany(s => s.Logs));
        }

        foreach (var service in _services.AsEnumerable().Reverse())
        {
            await service.DisposeAsync();
        }

        _topology?.Dispose();
    }
}

/// <summary>Tests of this collection share one <see cref="PublicApiCluster"/>.</summary>
[CollectionDefinition(Name)]
public sealed class PublicApiCollection : ICollectionFixture<PublicApiCluster>
{
    public const string Name = "public api cluster";
}
