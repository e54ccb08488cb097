using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Contracts.Directory;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Storage;
using Geo.Storage.Migrations;
using Geo.Testing;
using Geo.Testing.Faults;
using Geo.Testing.Security;
using Geo.Testing.Services;
using Geo.Core.Tls;
using Grpc.Core;
using Grpc.Net.Client;
using Npgsql;
using ReplicationClient = Geo.Contracts.Replication.Replication.ReplicationClient;

[assembly: AssemblyFixture(typeof(PostgresServer))]
[assembly: AssemblyFixture(typeof(RedisServer))]

namespace Geo.Replicator.Tests;

/// <summary>
/// Four regions as real processes on loopback, each a ShardDirectory and a Replicator over two real Postgres shard
/// databases: us-east, us-west and us-south (jurisdiction us) and eu-west (eu). The us-east ↔ us-west link runs
/// through two <see cref="FaultProxy"/> instances (one per direction) so tests can cut and heal it. Tests write with
/// <see cref="ShardStore"/> (the RegionService's storage path: a committed write is an acknowledged one).
/// </summary>
public sealed class ReplicationCluster(PostgresServer postgres, RedisServer redis) : IAsyncLifetime
{
    public static readonly string[] RegionIds = ["us-east", "us-west", "us-south", "eu-west"];

    private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("geo-replicator-tests-").FullName;
    private readonly Dictionary<string, Region> _regions = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, Region> Regions => _regions;

    public Region this[string id] => _regions[id];

    /// <summary>us-east → us-west.</summary>
    public FaultProxy EastToWest { get; private set; } = null!;

    /// <summary>us-west → us-east.</summary>
    public FaultProxy WestToEast { get; private set; } = null!;

    public string TopologyPath => Path.Combine(_dir, "topology.json");

    public async ValueTask InitializeAsync()
    {
        var ports = RegionIds.ToDictionary(r => r, _ => (Directory: FreePort.Next(), Replicator: FreePort.Next()));
        var template = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(ServiceProcess.RepositoryRoot(), "config", "topology.local.json")))!;
        var regions = new JsonObject();
        var redisDb = 4;
        foreach (var id in RegionIds)
        {
            var region = template["regions"]![id == "us-south" ? "us-west" : id]!.DeepClone();
            region["directory"] = $"https://127.0.0.1:{ports[id].Directory}";
            region["replicator"] = $"https://127.0.0.1:{ports[id].Replicator}";
            region["api"] = new JsonArray($"https://127.0.0.1:{FreePort.Next()}");
            region["edge"] = $"https://127.0.0.1:{FreePort.Next()}";
            region["redis"] = $"{redis.ConnectionString},defaultDatabase={redisDb++}";
            region["directoryDatabase"] = await postgres.CreateDatabaseAsync($"dir_{id.Replace('-', '_')}");
            var shards = new JsonObject();
            for (var i = 0; i < 2; i++)
            {
                shards[$"{id}-{i}"] = await postgres.CreateDatabaseAsync($"{id.Replace('-', '_')}_{i}");
            }

            region["shards"] = shards;
            regions[id] = region;
        }

        var topology = new JsonObject
        {
            ["regions"] = regions,
            ["latencyMs"] = new JsonObject
            {
                ["us-east"] = new JsonObject { ["us-west"] = 60, ["us-south"] = 40, ["eu-west"] = 75 },
                ["us-west"] = new JsonObject { ["us-south"] = 50, ["eu-west"] = 140 },
                ["us-south"] = new JsonObject { ["eu-west"] = 110 },
            },
        };
        await File.WriteAllTextAsync(TopologyPath, topology.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        EastToWest = FaultProxy.Start(ports["us-west"].Replicator);
        WestToEast = FaultProxy.Start(ports["us-east"].Replicator);
        foreach (var id in RegionIds)
        {
            var settings = new Dictionary<string, string> { ["Geo:Region"] = id, ["Geo:Topology"] = TopologyPath };
            var directory = await ServiceProcess.StartAsync("ShardDirectory", ports[id].Directory, settings, http2Only: true);
            var region = new Region(id, directory, regions[id]!["shards"]!.AsObject().ToDictionary(s => s.Key, s => s.Value!.GetValue<string>()));
            _regions[id] = region;
            await region.InitializeAsync();
        }

        await Task.WhenAll(RegionIds.Select(async id =>
            _regions[id].Replicator = await ServiceProcess.StartAsync("Replicator", ports[id].Replicator, ReplicatorSettings(id), http2Only: true)));
    }

    /// <summary>The settings the cluster starts <paramref name="id"/>'s replicator with (a test may start another binary's stand-in with more).</summary>
    public Dictionary<string, string> ReplicatorSettings(string id)
    {
        var settings = new Dictionary<string, string>
        {
            ["Geo:Region"] = id,
            ["Geo:Topology"] = TopologyPath,
            ["Replicator:PollInterval"] = "00:00:00.050",
            ["Replicator:HeartbeatInterval"] = "00:00:00.200",
            ["Replicator:PeerTimeout"] = "00:00:05",
            ["Replicator:InitialBackoff"] = "00:00:00.100",
            ["Replicator:MaxBackoff"] = "00:00:01",
            ["Replicator:BreakDuration"] = "00:00:01",
            ["Replicator:RewindDelay"] = "00:00:00.200",
            ["Replicator:AntiEntropyInterval"] = "00:00:00",
            ["Replicator:PruneInterval"] = "00:00:01",
        };
        if (id == "us-east")
        {
            settings["Replicator:PeerAddresses:us-west"] = EastToWest.Address.ToString();
        }

        if (id == "us-west")
        {
            settings["Replicator:PeerAddresses:us-east"] = WestToEast.Address.ToString();
        }

        return settings;
    }

    /// <summary>
    /// Runs <paramref name="body"/> while <paramref name="id"/>'s replicator is replaced by one started with
    /// <paramref name="settings"/> on the same port; the cluster's own replicator is started again afterwards.
    /// </summary>
    public async Task WithReplicatorAsync(string id, IReadOnlyDictionary<string, string> settings, Func<ServiceProcess, Task> body, CancellationToken ct)
    {
        var own = this[id].Replicator;
        await own.StopAsync();
        ServiceProcess? replaced = null;
        try
        {
            replaced = await ServiceProcess.StartAsync("Replicator", own.Port, settings, http2Only: true, readyTimeout: TimeSpan.FromSeconds(120), ct: ct);
            await body(replaced);
        }
        finally
        {
            if (replaced is not null)
            {
                await replaced.DisposeAsync();
            }

            await own.StartAsync(TimeSpan.FromSeconds(120), ct);
        }
    }

    /// <summary>A gRPC client of a region's replicator presenting the replicator certificate of <paramref name="asRegion"/>.</summary>
    public (ReplicationClient Client, Metadata Headers, GrpcChannel Channel) PeerClient(string target, string asRegion)
        => Client(target, TestPki.For(asRegion, PeerRoles.Replicator));

    /// <summary>A gRPC client of a region's replicator presenting the admin certificate (status, verify).</summary>
    public (ReplicationClient Client, Metadata Headers, GrpcChannel Channel) AdminClient(string target)
        => Client(target, TestPki.For(PeerIdentity.Admin));

    /// <summary>A gRPC client of a region's replicator presenting <paramref name="credentials"/> (null: no certificate).</summary>
    public (ReplicationClient Client, Metadata Headers, GrpcChannel Channel) Client(string target, TlsCredentials? credentials)
    {
        var address = _regions[target].Replicator.BaseAddress;
        var channel = credentials is null ? TestPki.AnonymousChannel(address) : TestPki.Channel(address, credentials);
        return (new ReplicationClient(channel), new Metadata(), channel);
    }

    /// <summary>Creates a user in <paramref name="home"/>'s directory (it replicates to every region from there).</summary>
    public async Task<string> CreateUserAsync(string home, string residency)
    {
        var id = Guid.CreateVersion7().ToString();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _regions[home].Directory.CreateUserAsync(id, residency, home);
                return id;
            }
            catch (RpcException ex) when (attempt < 3 && ex.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Unavailable)
            {
                // A directory busy on a loaded machine: creating the same id with the same payload again is idempotent.
                await Task.Delay(500 * attempt);
            }
        }
    }

    /// <summary>Waits until every region in <paramref name="regions"/> knows every user.</summary>
    public async Task WaitForUsersAsync(IEnumerable<string> regions, IReadOnlyCollection<string> users, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var pairs = regions.SelectMany(region => users.Select(user => (Region: region, User: user)));
        await Parallel.ForEachAsync(pairs, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (pair, _) =>
        {
            var directory = _regions[pair.Region].Directory;
            while (true)
            {
                directory.Invalidate(pair.User);
                if (await directory.GetUserAsync(pair.User) is not null)
                {
                    return;
                }

                Assert.True(DateTime.UtcNow < deadline, $"user {pair.User} did not reach {pair.Region} within {timeout}");
                await Task.Delay(100);
            }
        });
    }

    /// <summary>Polls until the digests of <paramref name="buckets"/> are equal in every region of <paramref name="regions"/>.</summary>
    public async Task<bool> WaitConvergedAsync(IReadOnlyList<string> regions, IReadOnlyCollection<int> buckets, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await DivergentBucketsAsync(regions, buckets) == 0)
            {
                return true;
            }

            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(250);
        }
    }

    /// <summary>
    /// The buckets where <paramref name="users"/>' rows differ between regions. The cluster is shared by every test of the
    /// collection, and a bucket holds other tests' users too: a test that asserts its own writes converged compares its
    /// own users' rows, so what another test left in a shared bucket cannot fail it.
    /// </summary>
    public async Task<IReadOnlyList<int>> DivergentBucketsOfUsersAsync(IReadOnlyList<string> regions, IReadOnlyCollection<string> users)
    {
        string[] ids = [.. users];
        var byRegion = new List<Dictionary<int, string>>();
        foreach (var region in regions)
        {
            var hashes = new Dictionary<int, string>();
            foreach (var shard in _regions[region].Stores.Keys)
            {
                foreach (var (bucket, hash) in await _regions[region].UsersDigestAsync(shard, ids))
                {
                    hashes[bucket] = hash;
                }
            }

            byRegion.Add(hashes);
        }

        return [.. byRegion.SelectMany(h => h.Keys).Distinct().Order()
            .Where(bucket => byRegion.Select(h => h.GetValueOrDefault(bucket, string.Empty)).Distinct(StringComparer.Ordinal).Count() > 1)];
    }

    /// <summary>Polls until <paramref name="users"/>' rows are the same in every region of <paramref name="regions"/>.</summary>
    public async Task<bool> WaitUsersConvergedAsync(IReadOnlyList<string> regions, IReadOnlyCollection<string> users, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while ((await DivergentBucketsOfUsersAsync(regions, users)).Count > 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(250);
        }

        return true;
    }

    /// <summary>
    /// Polls until every region in <paramref name="regions"/> has every change that originated in it durably
    /// acknowledged by every other region in <paramref name="regions"/> (the sender's checkpoint per peer and shard is at
    /// or past its last local change). Equal digests are not enough before checking conflict logs: a loser that arrives
    /// after the winner changes no digest, yet it is what writes the winner region's conflict entry.
    /// </summary>
    public async Task<bool> WaitDeliveredAsync(IReadOnlyList<string> regions, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        foreach (var from in regions)
        {
            foreach (var store in _regions[from].Stores.Values)
            {
                var last = await _regions[from].ScalarAsync(store.ShardId, $"SELECT coalesce(max(seq), 0) FROM change_log WHERE origin = '{from}'");
                foreach (var peer in regions.Where(r => r != from))
                {
                    while (await store.GetCheckpointAsync(peer, store.ShardId) < last)
                    {
                        if (DateTime.UtcNow > deadline)
                        {
                            return false;
                        }

                        await Task.Delay(100);
                    }
                }
            }
        }

        return true;
    }

    public async Task<int> DivergentBucketsAsync(IReadOnlyList<string> regions, IReadOnlyCollection<int> buckets)
    {
        var divergent = 0;
        foreach (var bucket in buckets)
        {
            var hashes = new HashSet<string>(StringComparer.Ordinal);
            foreach (var region in regions)
            {
                hashes.Add((await _regions[region].StoreOf(bucket).BucketDigestAsync(bucket)).Hash);
            }

            divergent += hashes.Count > 1 ? 1 : 0;
        }

        return divergent;
    }

    /// <summary>
    /// What differs in the <paramref name="divergent"/> buckets across <paramref name="regions"/>, for a failure message:
    /// each bucket's rows (of any user) that are not the same in every region (document versions, counter components, erasures, and the
    /// change-log entries of those keys), then every region's sender checkpoints and the replicators' warnings.
    /// </summary>
    public async Task<string> DescribeDivergenceAsync(IReadOnlyList<string> regions, IReadOnlyCollection<int> divergent, int most = 3)
    {
        var text = new System.Text.StringBuilder();
        foreach (var bucket in divergent.Take(most))
        {
            var rows = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
            foreach (var region in regions)
            {
                var store = _regions[region].StoreOf(bucket);
                rows[region] = [.. await _regions[region].RowsAsync(store.ShardId, $"""
                    SELECT 'doc ' || user_id || '/' || collection || '/' || key || ' ' || version_hlc || '@' || version_origin || CASE WHEN deleted THEN ' deleted' ELSE '' END FROM documents WHERE bucket = {bucket}
                    UNION ALL SELECT 'counter ' || user_id || '/' || name || ' ' || region || ' +' || incr || ' -' || decr FROM counters WHERE bucket = {bucket}
                    UNION ALL SELECT 'erased ' || user_id || ' ' || version_hlc || '@' || version_origin FROM erased_users WHERE bucket = {bucket}
                    UNION ALL SELECT 'floor ' || floor_hlc || '@' || floor_origin FROM tombstone_floors WHERE bucket = {bucket}
                    """)];
            }

            var common = rows.Values.Aggregate((a, b) => a.Intersect(b, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal));
            text.AppendLine($"bucket {bucket}:");
            foreach (var (region, set) in rows)
            {
                text.AppendLine($"  {region} ({_regions[region].StoreOf(bucket).ShardId}, {set.Count} rows): only here: {string.Join(" | ", set.Except(common, StringComparer.Ordinal).Order(StringComparer.Ordinal))}");
            }

            var keys = rows.Values.SelectMany(s => s.Except(common, StringComparer.Ordinal)).Where(r => r.StartsWith("doc ", StringComparison.Ordinal))
                .Select(r => r.Split(' ')[1].Split('/')).Select(k => (User: k[0], Key: k[2])).Distinct().Take(4).ToList();
            foreach (var (user, key) in keys)
            {
                foreach (var region in regions)
                {
                    var log = await _regions[region].RowsAsync(_regions[region].StoreOf(bucket).ShardId,
                        $"SELECT seq || ' ' || kind || ' ' || version_hlc || '@' || version_origin || ' origin ' || origin FROM change_log WHERE user_id = '{user}' AND key = '{key}' ORDER BY seq");
                    text.AppendLine($"  change log of {user}/{key} in {region}: {string.Join(" | ", log)}");
                }
            }
        }

        foreach (var region in regions)
        {
            foreach (var shard in _regions[region].Stores.Keys)
            {
                var checkpoints = await _regions[region].RowsAsync(shard, "SELECT row_to_json(c)::text FROM replication_checkpoints c");
                var head = await _regions[region].ScalarAsync(shard, "SELECT coalesce(max(seq), 0) FROM change_log");
                text.AppendLine($"{region}/{shard}: change-log head {head}; checkpoints {string.Join(" ", checkpoints)}");
            }
        }

        foreach (var line in WarningLogs.Concat(ErrorLogs).TakeLast(15))
        {
            // "[Replicator:pid] {json}": the time and the message are enough here.
            var json = line.IndexOf('{', StringComparison.Ordinal);
            text.AppendLine(json >= 0 && ParseOrNull(line[json..]) is JsonObject entry ? $"{line[..json]}{entry["Timestamp"]} {entry["Message"]}" : line);
        }

        return text.ToString();
    }

    private static JsonNode? ParseOrNull(string json)
    {
        try
        {
            return JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// After the PostgreSQL server was killed: drops this process's pooled connections and starts every
    /// directory and replicator again, so the tests that follow meet no connection the server already closed.
    /// </summary>
    public async Task RenewAfterServerRestartAsync(CancellationToken ct)
    {
        foreach (var region in _regions.Values)
        {
            region.ClearPools();
            await region.DirectoryProcess.StopAsync();
            await region.DirectoryProcess.StartAsync(TimeSpan.FromSeconds(120), ct);
        }

        await Task.WhenAll(_regions.Values.Select(async region =>
        {
            await region.Replicator.StopAsync();
            await region.Replicator.StartAsync(TimeSpan.FromSeconds(120), ct);
        }));
    }

    /// <summary>Replicator log lines at Error (the directory logs client resets of its own calls at Error, so it is left out).</summary>
    public IEnumerable<string> ErrorLogs => _regions.Values.SelectMany(r => r.Replicator?.ErrorLogs ?? []);

    public IEnumerable<string> WarningLogs => _regions.Values.SelectMany(r => r.Replicator?.Logs ?? []).Where(l => l.Contains("\"LogLevel\":\"Warning\"", StringComparison.Ordinal));

    public async ValueTask DisposeAsync()
    {
        if (Environment.GetEnvironmentVariable("GEO_TEST_LOGS") is { Length: > 0 } logFile)
        {
            await File.WriteAllLinesAsync(logFile, _regions.Values.SelectMany(r => (r.Replicator?.Logs ?? []).Concat(r.DirectoryProcess.Logs)));
        }

        foreach (var region in _regions.Values)
        {
            await region.DisposeAsync();
        }

        await EastToWest.DisposeAsync();
        await WestToEast.DisposeAsync();
        System.IO.Directory.Delete(_dir, recursive: true);
    }

    /// <summary>One region: its processes, a directory client, and a <see cref="ShardStore"/> per shard with its own clock.</summary>
    public sealed class Region(string id, ServiceProcess directory, IReadOnlyDictionary<string, string> shards) : IAsyncDisposable
    {
        private readonly Dictionary<string, NpgsqlDataSource> _sources = shards.ToDictionary(s => s.Key, s => NpgsqlDataSource.Create(s.Value));
        private GrpcChannel? _channel;
        private ShardMapSnapshot? _map;

        public string Id => id;

        public ServiceProcess DirectoryProcess => directory;

        public ServiceProcess Replicator { get; set; } = null!;

        public IReadOnlyDictionary<string, string> ConnectionStrings => shards;

        public DirectoryClient Directory { get; private set; } = null!;

        public HybridLogicalClock Clock { get; } = new(TimeProvider.System, TimeSpan.FromSeconds(5));

        public Dictionary<string, ShardStore> Stores { get; } = new(StringComparer.Ordinal);

        public ShardStore StoreOf(int bucket) => Stores[_map!.Map.ShardOf(bucket)];

        public ShardStore StoreOfUser(string userId) => StoreOf(Buckets.Of(userId));

        public async Task InitializeAsync()
        {
            _channel = DirectoryClient.CreateChannel(directory.BaseAddress, TestPki.Harness.ClientOptions());
            Directory = new DirectoryClient(new Contracts.Directory.Directory.DirectoryClient(_channel), new DirectoryClientOptions { NegativeCacheTtl = TimeSpan.FromMilliseconds(1) });
            for (var attempt = 1; _map is null; attempt++)
            {
                try
                {
                    _map = await Directory.GetShardMapAsync(id);
                }
                catch (RpcException ex) when (attempt < 5 && ex.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Unavailable)
                {
                    await Task.Delay(500 * attempt); // A directory that just started on a saturated machine.
                }
            }
            foreach (var (shard, source) in _sources)
            {
                await ShardMigrator.MigrateAsync(source);
                Stores[shard] = new ShardStore(shard, id, source, Clock);
            }
        }

        /// <summary>Drops this test process's pooled connections to the region's shards (after the server was restarted or killed, they are dead).</summary>
        public void ClearPools()
        {
            foreach (var source in _sources.Values)
            {
                source.Clear();
            }
        }

        /// <summary>Runs a scalar count on every shard of the region and sums it.</summary>
        public async Task<long> CountAsync(string sql)
        {
            long total = 0;
            foreach (var shardId in _sources.Keys)
            {
                total += await ScalarAsync(shardId, sql);
            }

            return total;
        }

        // One hash per bucket over the given users' rows only (document versions and tombstones, counter components,
        // erasures), in a locale-independent order: what BucketDigestAsync hashes, restricted to one test's users.
        private const string UsersDigestSql = """
            SELECT bucket, md5(string_agg(r, E'\x1e' ORDER BY r COLLATE "C")) FROM (
                SELECT bucket, concat_ws(E'\x1f', 'd', user_id, collection, key, version_hlc, version_origin, deleted) AS r FROM documents WHERE user_id = ANY($1)
                UNION ALL SELECT bucket, concat_ws(E'\x1f', 'c', user_id, name, region, incr, decr) FROM counters WHERE user_id = ANY($1)
                UNION ALL SELECT bucket, concat_ws(E'\x1f', 'e', user_id, version_hlc, version_origin) FROM erased_users WHERE user_id = ANY($1)
            ) t GROUP BY bucket
            """;

        /// <summary>Per bucket of one shard, a hash of <paramref name="users"/>' rows (buckets without any are absent).</summary>
        public async Task<List<(int Bucket, string Hash)>> UsersDigestAsync(string shardId, string[] users)
        {
            await using var command = _sources[shardId].CreateCommand(UsersDigestSql);
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = users });
            await using var reader = await command.ExecuteReaderAsync();
            var rows = new List<(int, string)>();
            while (await reader.ReadAsync())
            {
                rows.Add((reader.GetInt32(0), reader.GetString(1)));
            }

            return rows;
        }

        /// <summary>Runs a query of one text column on one shard; the rows in the query's order.</summary>
        public async Task<List<string>> RowsAsync(string shardId, string sql)
        {
            await using var command = _sources[shardId].CreateCommand(sql);
            await using var reader = await command.ExecuteReaderAsync();
            var rows = new List<string>();
            while (await reader.ReadAsync())
            {
                rows.Add(reader.IsDBNull(0) ? "null" : reader.GetString(0));
            }

            return rows;
        }

        /// <summary>Runs a scalar query on one shard.</summary>
        public async Task<long> ScalarAsync(string shardId, string sql)
        {
            await using var command = _sources[shardId].CreateCommand(sql);
            return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }

        public async ValueTask DisposeAsync()
        {
            if (Replicator is not null)
            {
                await Replicator.DisposeAsync();
            }

            await directory.DisposeAsync();
            _channel?.Dispose();
            foreach (var source in _sources.Values)
            {
                await source.DisposeAsync();
            }
        }
    }
}

/// <summary>Tests of this collection share one <see cref="ReplicationCluster"/> and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ReplicationCluster>
{
    public const string Name = "replication cluster";
}
