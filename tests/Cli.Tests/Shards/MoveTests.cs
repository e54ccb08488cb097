using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Geo.Core.Placement;
using Geo.Testing;
using Geo.Testing.Services;
using Npgsql;

namespace Geo.Cli.Tests.Shards;

/// <summary>
/// The online move of ARCHITECTURE.md §9 end to end, with real processes: a ShardDirectory and a RegionService of
/// us-east on two shards, geoctl as a child process (killed twice and rerun), and a bounded writer at ≥ 200 writes/s
/// to users whose buckets move onto a third shard.
/// </summary>
public sealed class MoveTests(PostgresServer postgres, RedisServer redis, ITestOutputHelper output) : IAsyncLifetime
{
    private const string Token = "test-admin-token";
    private const int SeedRowsPerShard = 60_000;
    private readonly string _dir = Directory.CreateTempSubdirectory("geo-move-tests-").FullName;
    private readonly Dictionary<string, string> _shards = new(StringComparer.Ordinal);
    private ServiceProcess? _directory;
    private ServiceProcess? _api;

    private string TopologyPath => Path.Combine(_dir, "topology.json");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        foreach (var shard in new[] { "us-east-0", "us-east-1", "us-east-2" })
        {
            _shards[shard] = await postgres.CreateDatabaseAsync("move_" + shard.Replace('-', '_'), Ct);
        }

        var directoryDb = await postgres.CreateDatabaseAsync("move_dir", Ct);
        int directoryPort = FreePort.Next(), apiPort = FreePort.Next();
        var topology = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Data", "topology.local.json"), Ct))!;
        var region = topology["regions"]!["us-east"]!;
        region["api"] = new JsonArray($"http://127.0.0.1:{apiPort}");
        region["directory"] = $"http://127.0.0.1:{directoryPort}";
        region["redis"] = $"{redis.ConnectionString},defaultDatabase=5";
        region["directoryDatabase"] = directoryDb;
        region["shards"] = new JsonObject { ["us-east-0"] = _shards["us-east-0"], ["us-east-1"] = _shards["us-east-1"] };
        await File.WriteAllTextAsync(TopologyPath, topology.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), Ct);

        var settings = new Dictionary<string, string> { ["Geo:Region"] = "us-east", ["Geo:Topology"] = TopologyPath };
        _directory = await ServiceProcess.StartAsync("ShardDirectory", directoryPort, settings, http2Only: true, ct: Ct);
        _api = await ServiceProcess.StartAsync("RegionService", apiPort, settings, ct: Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_api is not null)
        {
            await _api.DisposeAsync();
        }

        if (_directory is not null)
        {
            await _directory.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Moving_buckets_onto_a_new_shard_under_writes_loses_and_duplicates_nothing_and_resumes_after_kills()
    {
        using var http = new HttpClient { BaseAddress = _api!.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        await SeedAsync();

        // A third shard: migrated and written into the topology; the directory reads the topology at start.
        var add = await GeoctlAsync(["shards", "add", "--region", "us-east", "--id", "us-east-2", "--connection", _shards["us-east-2"], "--yes"]);
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Contains("us-east-2", await File.ReadAllTextAsync(TopologyPath, Ct), StringComparison.Ordinal);
        await _directory!.StopAsync();
        await _directory.StartAsync(TimeSpan.FromSeconds(60), Ct);

        var planPath = Path.Combine(_dir, "plan.json");
        var plan = await GeoctlAsync(["shards", "plan", "--region", "us-east", "--onto", "us-east-2", "--out", planPath, "-o", "json"]);
        Assert.True(plan.ExitCode == 0, plan.ToString());
        var planJson = JsonNode.Parse(await File.ReadAllTextAsync(planPath, Ct))!;
        var moving = planJson["moves"]!.AsArray().SelectMany(m => m!["buckets"]!.AsArray().Select(b => (int)b!)).ToHashSet();
        // Balanced by rows (plus one per bucket): a third of the rows moves onto the new shard.
        var movedRows = planJson["moves"]!.AsArray().Sum(m => (long)m!["rows"]!);
        Assert.InRange(movedRows, (long)planJson["totalRows"]! * 0.30, (long)planJson["totalRows"]! * 0.36);

        // Writers' users live in moving buckets.
        var users = new List<string>();
        for (var i = 0; i < 300 && users.Count < 16; i++)
        {
            var created = await http.PostAsJsonAsync("/v1/users", new { residency = "us", homeRegion = "us-east" }, Ct);
            created.EnsureSuccessStatusCode();
            var id = (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("userId").GetString()!;
            if (moving.Contains(Buckets.Of(id)))
            {
                users.Add(id);
            }
        }

        Assert.Equal(16, users.Count);
        await using var writer = new BoundedWriter(http, users, ratePerSecond: 320, maxWrites: 40_000, maxTime: TimeSpan.FromSeconds(150));
        writer.Start();
        await Task.Delay(3000, Ct);
        output.WriteLine($"before the move: {writer.Progress}");

        // Kill geoctl during the copy, then during the catch-up; each rerun resumes.
        var kill1 = await GeoctlAsync(["shards", "apply", "--plan", planPath, "--yes"], killWhen: "copying");
        output.WriteLine($"kill 1: {kill1.KilledAt}");
        var kill2 = await GeoctlAsync(["shards", "apply", "--plan", planPath, "--yes"], killWhen: "catching up from the source change log");
        output.WriteLine($"kill 2: {kill2.KilledAt}");
        Assert.NotNull(kill1.KilledAt);
        Assert.NotNull(kill2.KilledAt);
        var apply = await GeoctlAsync(["shards", "apply", "--plan", planPath, "--yes", "-o", "json"]);
        Assert.True(apply.ExitCode == 0, apply.ToString());
        output.WriteLine(apply.Stderr);
        await Task.Delay(1000, Ct);
        var stats = await writer.StopAsync();

        var results = JsonNode.Parse(apply.Stdout)!.AsArray();
        var pauses = results.Select(r => (double)r!["pauseMs"]!).ToArray();
        Assert.All(results, r => Assert.Equal("completed", (string)r!["step"]!));
        output.WriteLine($"writes sent {stats.Sent}, acknowledged {stats.Acknowledged}, refused {stats.Refused}; rate {stats.Sent / stats.Elapsed.TotalSeconds:F0}/s; " +
            $"max write latency during the move {stats.MaxLatency.TotalMilliseconds:F0} ms (p99 {stats.P99.TotalMilliseconds:F0} ms); fence->flip ms: {string.Join(", ", pauses.Select(p => p.ToString("F0", System.Globalization.CultureInfo.InvariantCulture)))}");
        foreach (var line in _api.Logs.Where(l => l.Contains("\"LogLevel\":\"Warning\"", StringComparison.Ordinal)).Take(10))
        {
            output.WriteLine(line);
        }

        Assert.True(stats.Acknowledged > stats.Sent * 0.95, $"acknowledged {stats.Acknowledged} of {stats.Sent}");

        // Nothing lost, nothing duplicated: every counter equals its acknowledged increments (a 503 wrote nothing),
        // every document holds its last acknowledged value, on the new owner, with exactly one version per acknowledged write.
        foreach (var (user, acked) in stats.CounterAcks)
        {
            var value = (await http.GetFromJsonAsync<JsonElement>($"/v1/users/{user}/counters/c", Ct)).GetProperty("value").GetInt64();
            Assert.Equal(acked, value);
        }

        foreach (var ((user, key), last) in stats.LastDocument)
        {
            var body = await http.GetStringAsync($"/v1/users/{user}/docs/notes/{key}", Ct);
            Assert.Equal(last, JsonDocument.Parse(body).RootElement.GetProperty("n").GetInt64());
            Assert.Equal(1, await ScalarAsync("us-east-2", "SELECT count(*) FROM documents WHERE user_id = @u AND key = @k AND (body->>'n')::bigint = @n", user, key, last));
            Assert.Equal(0, await ScalarAsync("us-east-0", "SELECT count(*) FROM documents WHERE user_id = @u", user) + await ScalarAsync("us-east-1", "SELECT count(*) FROM documents WHERE user_id = @u", user));
            var versions = new HashSet<string>(StringComparer.Ordinal);
            foreach (var shard in _shards.Keys)
            {
                await using var connection = new NpgsqlConnection(_shards[shard]);
                await connection.OpenAsync(Ct);
                await using var command = new NpgsqlCommand("SELECT version_hlc || '@' || version_origin FROM change_log WHERE user_id = @u AND key = @k", connection);
                command.Parameters.AddWithValue("u", user);
                command.Parameters.AddWithValue("k", key);
                await using var reader = await command.ExecuteReaderAsync(Ct);
                while (await reader.ReadAsync(Ct))
                {
                    versions.Add(reader.GetString(0));
                }
            }

            Assert.Equal(stats.DocumentAcks[(user, key)], versions.Count);
        }

        var verify = await GeoctlAsync(["shards", "verify", "--region", "us-east"]);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("clean", verify.Stdout, StringComparison.Ordinal);

        // A stale plan (the map's epoch moved on) is refused before it begins anything.
        planJson["moves"]![0]!["moveId"] = "stale-move";
        var stalePath = Path.Combine(_dir, "stale.json");
        await File.WriteAllTextAsync(stalePath, planJson.ToJsonString(), Ct);
        var stale = await GeoctlAsync(["shards", "apply", "--plan", stalePath, "--yes"]);
        Assert.Equal(7, stale.ExitCode);
        Assert.Contains("stale", stale.Stderr, StringComparison.Ordinal);

        var status = await GeoctlAsync(["shards", "status", "--region", "us-east"]);
        output.WriteLine(status.Stdout);
        Assert.Empty(_api.ErrorLogs.Concat(_directory.ErrorLogs));

        // Last, so that a starved host (the writer's rate depends on the service's latency) still shows the checks above.
        Assert.True(stats.Sent / stats.Elapsed.TotalSeconds >= 200, $"writer rate {stats.Sent / stats.Elapsed.TotalSeconds:F0}/s (load average: {File.ReadAllText("/proc/loadavg").Trim()})");
    }

    private async Task<long> ScalarAsync(string shard, string sql, string user, string? key = null, long? n = null)
    {
        await using var connection = new NpgsqlConnection(_shards[shard]);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("u", user);
        command.Parameters.AddWithValue("k", (object?)key ?? DBNull.Value);
        command.Parameters.AddWithValue("n", (object?)n ?? DBNull.Value);
        return Convert.ToInt64(await command.ExecuteScalarAsync(Ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Rows in the two first shards (on the buckets each owns), so the copy takes long enough to be killed.</summary>
    private async Task SeedAsync()
    {
        var map = ShardMap.Initial(["us-east-0", "us-east-1"]);
        foreach (var shard in new[] { "us-east-0", "us-east-1" })
        {
            await using var connection = new NpgsqlConnection(_shards[shard]);
            await connection.OpenAsync(Ct);
            await using var import = await connection.BeginBinaryImportAsync(
                "COPY documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, updated_at) FROM STDIN (FORMAT BINARY)", Ct);
            var hlc = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000) << 16;
            for (var written = 0; written < SeedRowsPerShard;)
            {
                var user = Guid.CreateVersion7().ToString();
                var bucket = Buckets.Of(user);
                if (map.ShardOf(bucket) != shard)
                {
                    continue;
                }

                await import.StartRowAsync(Ct);
                await import.WriteAsync(user, NpgsqlTypes.NpgsqlDbType.Text, Ct);
                await import.WriteAsync("seed", NpgsqlTypes.NpgsqlDbType.Text, Ct);
                await import.WriteAsync("k", NpgsqlTypes.NpgsqlDbType.Text, Ct);
                await import.WriteAsync(bucket, NpgsqlTypes.NpgsqlDbType.Integer, Ct);
                await import.WriteAsync("""{"seed":true,"pad":"0123456789012345678901234567890123456789"}""", NpgsqlTypes.NpgsqlDbType.Jsonb, Ct);
                await import.WriteAsync(false, NpgsqlTypes.NpgsqlDbType.Boolean, Ct);
                await import.WriteAsync(hlc + written, NpgsqlTypes.NpgsqlDbType.Bigint, Ct);
                await import.WriteAsync("us-east", NpgsqlTypes.NpgsqlDbType.Text, Ct);
                await import.WriteAsync(DateTimeOffset.UtcNow, NpgsqlTypes.NpgsqlDbType.TimestampTz, Ct);
                written++;
            }

            await import.CompleteAsync(Ct);
        }
    }

    /// <summary>Runs geoctl's built assembly as a child process; with <paramref name="killWhen"/>, kills it when stderr shows that text.</summary>
    private async Task<GeoctlRun> GeoctlAsync(string[] args, string? killWhen = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(ServiceProcess.RepositoryRoot(), "src", "Cli", "bin", "Release", "net10.0", "geoctl.dll"));
        foreach (var arg in args.Concat(["--topology", TopologyPath]))
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["GEO_ADMIN_TOKEN"] = Token;
        using var process = new Process { StartInfo = info };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        string? killedAt = null;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }

            if (killWhen is not null && killedAt is null && e.Data.Contains(killWhen, StringComparison.Ordinal))
            {
                killedAt = e.Data;
                process.Kill(entireProcessTree: true);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        process.WaitForExit();
        lock (stderr)
        {
            return new GeoctlRun(process.ExitCode, stdout.ToString(), stderr.ToString(), killedAt);
        }
    }

    private sealed record GeoctlRun(int ExitCode, string Stdout, string Stderr, string? KilledAt)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }
}
