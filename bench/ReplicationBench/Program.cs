using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Bench;
using Geo.Contracts.Directory;
using Geo.Contracts.Replication;
using Geo.Core.Clock;
using Geo.Storage;
using Geo.Storage.Migrations;
using Geo.Testing;
using Geo.Testing.Services;
using Grpc.Core;
using Grpc.Net.Client;
using Npgsql;

// Replication benchmark (bench/README.md). Phase 1: one receiver (a real us-west Replicator process) applies batches that
// this program sends over its gRPC stream as peer us-east, against a raw batched INSERT of the same rows into a database
// of the same Postgres server, alternating rounds in one run. Phase 2: the real us-east Replicator ships writes made at a
// fixed rate of half the measured apply maximum; lag = receiver's apply time - sender's write time, per row.
var options = BenchOptions.Parse(args);
Console.Error.WriteLine($"replication bench: {options}");
await using var postgres = new PostgresServer();
await postgres.InitializeAsync();
await using var redis = new RedisServer();
await redis.InitializeAsync();
await using var cluster = await BenchCluster.StartAsync(postgres, redis);

// Phase 1: applied changes/s of one receiver vs a raw batched insert.
var applyUsers = await cluster.CreateUsersAsync("us-west", options.Users);
var rawDatabase = await postgres.CreateDatabaseAsync("bench_raw");
await using var raw = NpgsqlDataSource.Create(rawDatabase);
await ShardMigrator.MigrateAsync(raw);
var clock = new HybridLogicalClock(TimeProvider.System, TimeSpan.FromSeconds(5));
// Warm-up: a whole round of each (JIT, pools, plans). The receiver's code must reach its optimized tier first: after a
// warm-up of 2,000 changes its JIT thread was still as busy as its workers during the first measured round.
await ReceiverBench.ApplyAsync(cluster, applyUsers, "warmup", 0, options.Changes, options, clock);
await RawInsert.RunAsync(raw, applyUsers, "warmup", options.Changes, options.BatchSize, clock, withLog: false);
await RawInsert.RunAsync(raw, applyUsers, "warmup-log", options.Changes, options.BatchSize, clock, withLog: true);
var applied = new List<double>();
var inserted = new List<double>();
var insertedWithLog = new List<double>();
for (var round = 1; round <= options.Rounds; round++)
{
    var a = await ReceiverBench.ApplyAsync(cluster, applyUsers, $"round{round}", 0, options.Changes, options, clock);
    var r = await RawInsert.RunAsync(raw, applyUsers, $"round{round}", options.Changes, options.BatchSize, clock, withLog: false);
    var l = await RawInsert.RunAsync(raw, applyUsers, $"round{round}-log", options.Changes, options.BatchSize, clock, withLog: true);
    applied.Add(a);
    inserted.Add(r);
    insertedWithLog.Add(l);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"round {round}: receiver applied {a,8:0} changes/s   raw batched insert {r,8:0} rows/s   ratio {a / r:0.00}   (with change-log rows {l,8:0} rows/s, {l / r:0.00} of raw)"));
}

var maxApply = Stats.Median(applied);
var maxRaw = Stats.Median(inserted);
var maxRawWithLog = Stats.Median(insertedWithLog);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"median:  receiver applied {maxApply,8:0} changes/s   raw batched insert {maxRaw,8:0} rows/s   ratio {maxApply / maxRaw:0.00}  ({options.Changes} changes per round, batches of {options.BatchSize}, window {options.Window})"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"median:  raw batched insert with each row's change-log entry {maxRawWithLog,8:0} rows/s = {maxRawWithLog / maxRaw:0.00} of raw; the receiver is {maxApply / maxRawWithLog:0.00} of it"));

// Phase 2: lag at a fixed write load of half the measured maximum, through the real sender.
await cluster.StartSenderAsync();
var lagUsers = await cluster.CreateUsersAsync("us-east", options.Users);
await cluster.WaitForUsersAsync("us-west", lagUsers, TimeSpan.FromSeconds(120));
var lag = await LagBench.RunAsync(cluster, lagUsers, options.LagRate > 0 ? options.LagRate : maxApply / 2, options);
Console.WriteLine(lag);
return 0;

namespace Geo.Bench
{
    internal sealed record BenchOptions(int Changes, int Users, int Rounds, int BatchSize, int Window, TimeSpan LagDuration, int Writers, int LagRate)
    {
        public static BenchOptions Parse(string[] args)
        {
            var values = args.Select(a => a.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0].TrimStart('-'), p => p[1], StringComparer.Ordinal);
            int Int(string name, int fallback) => values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
            var options = new BenchOptions(Int("changes", 20_000), Int("users", 1_000), Int("rounds", 3), Int("batch", 200), Int("window", 4),
                TimeSpan.FromSeconds(Int("lag-seconds", 20)), Int("writers", 16), Int("lag-rate", 0));
            if (options.Changes < 1 || options.Changes > 1_000_000 || options.Rounds is < 1 or > 20 || options.BatchSize is < 1 or > 1000
                || options.Window is < 1 or > 64 || options.LagDuration > TimeSpan.FromMinutes(10) || options.Writers is < 1 or > 64 || options.Users < 1 || options.LagRate is < 0 or > 100_000)
            {
                throw new ArgumentException("bounds: changes 1..1000000, rounds 1..20, batch 1..1000, window 1..64, lag-seconds <= 600, writers 1..64, lag-rate 0..100000 (0: half the median apply maximum)");
            }

            return options;
        }
    }

    internal static class Stats
    {
        public static double Median(IReadOnlyList<double> values) => Percentile(values, 0.5);

        public static double Percentile(IReadOnlyList<double> values, double p)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        }
    }

    /// <summary>Two regions of jurisdiction us on loopback: each a ShardDirectory and a Replicator (us-east's started on demand).</summary>
    internal sealed class BenchCluster : IAsyncDisposable
    {
        private readonly List<ServiceProcess> _processes = [];
        private readonly Dictionary<string, DirectoryClient> _directories = new(StringComparer.Ordinal);
        private readonly List<GrpcChannel> _channels = [];
        private readonly string _dir = System.IO.Directory.CreateTempSubdirectory("geo-replication-bench-").FullName;
        private Dictionary<string, string> _eastSettings = [];

        public Dictionary<string, string> Shards { get; } = new(StringComparer.Ordinal);

        public Uri WestReplicator { get; private set; } = null!;

        public int EastReplicatorPort { get; private set; }

        public static async Task<BenchCluster> StartAsync(PostgresServer postgres, RedisServer redis)
        {
            var cluster = new BenchCluster();
            await cluster.InitializeAsync(postgres, redis);
            return cluster;
        }

        private async Task InitializeAsync(PostgresServer postgres, RedisServer redis)
        {
            var regions = new JsonObject();
            var ports = new Dictionary<string, (int Directory, int Replicator)>(StringComparer.Ordinal);
            var redisDb = 0;
            foreach (var (id, shardCount) in new[] { ("us-east", 2), ("us-west", 1) })
            {
                ports[id] = (FreePort.Next(), FreePort.Next());
                var shards = new JsonObject();
                for (var i = 0; i < shardCount; i++)
                {
                    var connection = await postgres.CreateDatabaseAsync($"{id.Replace('-', '_')}_{i}");
                    shards[$"{id}-{i}"] = connection;
                    Shards[$"{id}-{i}"] = connection;
                }

                regions[id] = new JsonObject
                {
                    ["jurisdiction"] = "us",
                    ["edge"] = $"https://127.0.0.1:{FreePort.Next()}",
                    ["api"] = new JsonArray($"https://127.0.0.1:{FreePort.Next()}"),
                    ["directory"] = $"https://127.0.0.1:{ports[id].Directory}",
                    ["replicator"] = $"https://127.0.0.1:{ports[id].Replicator}",
                    ["redis"] = $"{redis.ConnectionString},defaultDatabase={redisDb++}",
                    ["directoryDatabase"] = await postgres.CreateDatabaseAsync($"dir_{id.Replace('-', '_')}"),
                    ["shards"] = shards,
                };
            }

            var topology = new JsonObject { ["regions"] = regions, ["latencyMs"] = new JsonObject { ["us-east"] = new JsonObject { ["us-west"] = 60 } } };
            var path = Path.Combine(_dir, "topology.json");
            await File.WriteAllTextAsync(path, topology.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            foreach (var id in ports.Keys)
            {
                var directory = await ServiceProcess.StartAsync("ShardDirectory", ports[id].Directory, new Dictionary<string, string> { ["Geo:Region"] = id, ["Geo:Topology"] = path }, http2Only: true);
                _processes.Add(directory);
                var channel = DirectoryClient.CreateChannel(directory.BaseAddress, Geo.Testing.Security.TestPki.Harness.ClientOptions());
                _channels.Add(channel);
                _directories[id] = new DirectoryClient(new Contracts.Directory.Directory.DirectoryClient(channel), new DirectoryClientOptions { NegativeCacheTtl = TimeSpan.FromMilliseconds(1) });
            }

            Dictionary<string, string> Settings(string id) => new()
            {
                ["Geo:Region"] = id,
                ["Geo:Topology"] = path,
                ["Replicator:AntiEntropyInterval"] = "00:00:00",
                ["Logging:LogLevel:Default"] = "Warning",
            };

            _processes.Add(await ServiceProcess.StartAsync("Replicator", ports["us-west"].Replicator, Settings("us-west"), http2Only: true));
            WestReplicator = new Uri($"https://127.0.0.1:{ports["us-west"].Replicator}");
            EastReplicatorPort = ports["us-east"].Replicator;
            _eastSettings = Settings("us-east");
        }

        /// <summary>Starts the us-east Replicator (the real sender for the lag phase).</summary>
        public async Task StartSenderAsync() =>
            _processes.Add(await ServiceProcess.StartAsync("Replicator", EastReplicatorPort, _eastSettings, http2Only: true));

        public async Task<IReadOnlyList<string>> CreateUsersAsync(string home, int count)
        {
            var users = new string[count];
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, ct) =>
            {
                users[i] = Guid.CreateVersion7().ToString();
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        await _directories[home].CreateUserAsync(users[i], "us", home, ct);
                        break;
                    }
                    catch (RpcException ex) when (attempt < 5 && ex.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Unavailable)
                    {
                        await Task.Delay(500 * attempt, ct); // A busy directory; the same id and payload again is idempotent.
                    }
                }
            });
            return users;
        }

        public async Task WaitForUsersAsync(string region, IReadOnlyList<string> users, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            foreach (var user in users)
            {
                while (await _directories[region].GetUserAsync(user) is null)
                {
                    _directories[region].Invalidate(user);
                    if (DateTime.UtcNow > deadline)
                    {
                        throw new TimeoutException($"user {user} did not reach {region} within {timeout}");
                    }

                    await Task.Delay(100);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var process in Enumerable.Reverse(_processes))
            {
                await process.DisposeAsync();
            }

            foreach (var channel in _channels)
            {
                channel.Dispose();
            }

            System.IO.Directory.Delete(_dir, recursive: true);
        }
    }

    /// <summary>Streams document changes to the us-west receiver as peer us-east, a window of batches in flight, like a sender.</summary>
    internal static class ReceiverBench
    {
        public static async Task<double> ApplyAsync(BenchCluster cluster, IReadOnlyList<string> users, string stream, long afterSeq, int count,
            BenchOptions options, HybridLogicalClock clock)
        {
            // As peer us-east: its replicator certificate is who the receiver believes it is (mutual TLS, no header).
            using var channel = Geo.Testing.Security.TestPki.Channel(cluster.WestReplicator, Geo.Testing.Security.TestPki.For("us-east", Geo.Core.Tls.PeerRoles.Replicator));
            var client = new Replication.ReplicationClient(channel);
            var headers = new Metadata();
            var batches = new List<ChangeBatch>();
            for (var start = 0; start < count; start += options.BatchSize)
            {
                var batch = new ChangeBatch { Stream = stream, AfterSeq = afterSeq + start, LastSeq = afterSeq + Math.Min(count, start + options.BatchSize) };
                for (var i = start; i < Math.Min(count, start + options.BatchSize); i++)
                {
                    batch.Changes.Add(new Change
                    {
                        Seq = afterSeq + i + 1,
                        Kind = Contracts.Replication.ChangeKind.Document,
                        UserId = users[i % users.Count],
                        Collection = "bench",
                        Key = $"{stream}-{i}",
                        Body = RawInsert.Body(i),
                        Version = new Contracts.Replication.Version { Hlc = clock.Now().Value, Origin = "us-east" },
                        Origin = "us-east",
                    });
                }

                batches.Add(batch);
            }

            using var call = client.Replicate(headers);
            using var window = new SemaphoreSlim(options.Window, options.Window);
            var appliedTotal = 0;
            var watch = Stopwatch.StartNew();
            var reader = Task.Run(async () =>
            {
                var acked = 0;
                while (acked < batches.Count && await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                    var ack = call.ResponseStream.Current.Ack;
                    if (ack is null)
                    {
                        continue;
                    }

                    if (ack.Rewind || ack.Refused > 0 || ack.Quarantined > 0)
                    {
                        throw new InvalidOperationException($"receiver did not apply batch up to {ack.BatchLastSeq}: rewind={ack.Rewind} refused={ack.Refused} quarantined={ack.Quarantined}");
                    }

                    appliedTotal += ack.Applied;
                    acked++;
                    window.Release();
                }
            });
            foreach (var batch in batches)
            {
                await window.WaitAsync();
                await call.RequestStream.WriteAsync(new ReplicationMessage { Batch = batch });
            }

            await reader.WaitAsync(TimeSpan.FromMinutes(5));
            watch.Stop();
            await call.RequestStream.CompleteAsync();
            if (appliedTotal != count)
            {
                throw new InvalidOperationException($"receiver applied {appliedTotal} of {count} changes");
            }

            return count / watch.Elapsed.TotalSeconds;
        }
    }

    /// <summary>
    /// The baseline: the same rows inserted into <c>documents</c> of another database on the same server, one transaction
    /// per batch, each in its user's bucket as the receiver stores it (rows all in one bucket would fill one corner of the
    /// bucket index and cost less than the same rows spread over the buckets). With <c>withLog</c>, each row's
    /// change-log entry is inserted in the same transaction too (one more set-based statement): the least durable work
    /// an apply must do, since an online move's catch-up replays the log, bodies included.
    /// </summary>
    internal static class RawInsert
    {
        private const string InsertSql = """
            INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, updated_at)
            SELECT u, 'bench', k, bucket, b::jsonb, false, h, 'us-east', now()
            FROM unnest(@Users::text[], @Keys::text[], @Buckets::int[], @Bodies::text[], @Hlcs::bigint[]) AS t(u, k, bucket, b, h)
            """;

        public static string Body(int i) => $$"""{"n":{{i}},"text":"benchmark body of a typical small document"}""";

        private const string InsertLogSql = """
            INSERT INTO change_log (bucket, user_id, kind, collection, key, body, deleted, version_hlc, version_origin, origin, created_at)
            SELECT bucket, u, 'doc', 'bench', k, b::jsonb, false, h, 'us-east', 'us-east', now()
            FROM unnest(@Users::text[], @Keys::text[], @Buckets::int[], @Bodies::text[], @Hlcs::bigint[]) AS t(u, k, bucket, b, h)
            """;

        public static async Task<double> RunAsync(NpgsqlDataSource source, IReadOnlyList<string> users, string prefix, int count, int batchSize, HybridLogicalClock clock,
            bool withLog)
        {
            var rows = Enumerable.Range(0, count).Select(i => (User: users[i % users.Count], Key: $"{prefix}-{i}", Body: Body(i), Hlc: clock.Now().Value)).ToList();
            await using var connection = await source.OpenConnectionAsync();
            var watch = Stopwatch.StartNew();
            foreach (var chunk in rows.Chunk(batchSize))
            {
                await using var tx = await connection.BeginTransactionAsync();
                await using var batch = new NpgsqlBatch(connection, tx); // one round trip, then the commit
                foreach (var sql in withLog ? [InsertSql, InsertLogSql] : new[] { InsertSql })
                {
                    var command = new NpgsqlBatchCommand(sql);
                    command.Parameters.AddWithValue("Users", chunk.Select(r => r.User).ToArray());
                    command.Parameters.AddWithValue("Keys", chunk.Select(r => r.Key).ToArray());
                    command.Parameters.AddWithValue("Buckets", chunk.Select(r => Geo.Core.Placement.Buckets.Of(r.User)).ToArray());
                    command.Parameters.AddWithValue("Bodies", chunk.Select(r => r.Body).ToArray());
                    command.Parameters.AddWithValue("Hlcs", chunk.Select(r => r.Hlc).ToArray());
                    batch.BatchCommands.Add(command);
                }

                await batch.ExecuteNonQueryAsync();
                await tx.CommitAsync();
            }

            return count / watch.Elapsed.TotalSeconds;
        }
    }

    /// <summary>Writes at a fixed rate into us-east's shards (the RegionService's storage path); the real replicators ship them.</summary>
    internal static class LagBench
    {
        public static async Task<string> RunAsync(BenchCluster cluster, IReadOnlyList<string> users, double rate, BenchOptions options)
        {
            var clock = new HybridLogicalClock(TimeProvider.System, TimeSpan.FromSeconds(5));
            var sources = cluster.Shards.Where(s => s.Key.StartsWith("us-east", StringComparison.Ordinal)).ToDictionary(s => s.Key, s => NpgsqlDataSource.Create(s.Value));
            var west = NpgsqlDataSource.Create(cluster.Shards["us-west-0"]);
            try
            {
                // The region's shard map puts bucket b on shard b mod n of the sorted ids (docs/decisions.md).
                var ids = sources.Keys.Order(StringComparer.Ordinal).ToArray();
                var stores = ids.Select(id => new ShardStore(id, "us-east", sources[id], clock)).ToArray();
                var total = (int)Math.Min(rate * options.LagDuration.TotalSeconds, 1_000_000);
                var next = -1;
                var watch = Stopwatch.StartNew();
                var behind = 0;
                await Task.WhenAll(Enumerable.Range(0, options.Writers).Select(async _ =>
                {
                    while (true)
                    {
                        var i = Interlocked.Increment(ref next);
                        if (i >= total)
                        {
                            return;
                        }

                        var due = TimeSpan.FromSeconds(i / rate);
                        var wait = due - watch.Elapsed;
                        if (wait > TimeSpan.Zero)
                        {
                            await Task.Delay(wait);
                        }
                        else if (wait < TimeSpan.FromMilliseconds(-100))
                        {
                            Interlocked.Increment(ref behind);
                        }

                        var user = users[i % users.Count];
                        var store = stores[Core.Placement.Buckets.Of(user) % stores.Length];
                        await store.PutDocumentAsync(user, "lag", $"w{i}", RawInsert.Body(i));
                    }
                }));
                var writeSeconds = watch.Elapsed.TotalSeconds;

                // Wait (bounded) until the receiver holds every row, then lag per row = receiver's apply time - sender's write time.
                var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
                while (await ScalarAsync(west, "SELECT count(*) FROM documents WHERE collection = 'lag'") < total)
                {
                    if (DateTime.UtcNow > deadline)
                    {
                        throw new TimeoutException("the receiver did not get every lag-phase write within 3 minutes");
                    }

                    await Task.Delay(200);
                }

                var sent = new Dictionary<string, DateTime>(StringComparer.Ordinal);
                foreach (var source in sources.Values)
                {
                    await foreach (var (key, at) in ReadTimesAsync(source))
                    {
                        sent[key] = at;
                    }
                }

                var lags = new List<double>();
                await foreach (var (key, at) in ReadTimesAsync(west))
                {
                    lags.Add((at - sent[key]).TotalMilliseconds);
                }

                return string.Create(CultureInfo.InvariantCulture,
                    $"lag at {rate:0} writes/s target ({(options.LagRate > 0 ? "--lag-rate" : "half the median apply maximum")}): achieved {total / writeSeconds:0} writes/s over {writeSeconds:0.0} s ({total} writes, {options.Writers} writers, {behind} started >100 ms late); "
                    + $"lag p50 {Stats.Percentile(lags, 0.5):0} ms, p99 {Stats.Percentile(lags, 0.99):0} ms, max {lags.Max():0} ms");
            }
            finally
            {
                foreach (var source in sources.Values)
                {
                    await source.DisposeAsync();
                }

                await west.DisposeAsync();
            }
        }

        private static async Task<long> ScalarAsync(NpgsqlDataSource source, string sql)
        {
            await using var command = source.CreateCommand(sql);
            return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }

        private static async IAsyncEnumerable<(string Key, DateTime At)> ReadTimesAsync(NpgsqlDataSource source)
        {
            await using var command = source.CreateCommand("SELECT key, updated_at FROM documents WHERE collection = 'lag'");
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                yield return (reader.GetString(0), reader.GetDateTime(1));
            }
        }
    }
}
