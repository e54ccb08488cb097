using System.Net;
using System.Text.Json.Nodes;
using Geo.Testing.Services;
using Npgsql;
using StackExchange.Redis;

namespace Geo.EndToEnd;

/// <summary>
/// Erasure on real processes (docs/architecture.md, "The path of one erase"): a canary user written through both eu
/// regions, erased through the edge while eu-central's replicator is down, leaves no trace of any canary in any store
/// of any region once eu-central caught up — every table of every shard and directory database, every Redis key and
/// value, every log line — and every later write of the user is refused, local or replicated with a newer version.
/// </summary>
/// <remarks>
/// Negative control: run with <c>GEO_TEST_SKIP_ERASE_STEP=change_log</c> in the environment (the services inherit it, see
/// <c>ShardStore.SkippedEraseStepVariable</c>): the erase then leaves the change-log rows and the scan fails.
/// </remarks>
[Collection(GeoSystemCollection.Name)]
public sealed class ErasureTests(GeoSystem system) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Letters outside hex and the base64 of ids, so no id, hash or trace id can contain it by chance.
    private readonly string _tag = "zqcanary" + string.Concat(Guid.NewGuid().ToString("N")[..10].Select(c => (char)('g' + (c % 16))));

    public async ValueTask InitializeAsync() => await system.RestoreAsync();

    public async ValueTask DisposeAsync() => await system.RestoreAsync();

    [Fact]
    public async Task An_erased_user_leaves_no_canary_in_any_store_or_log_and_every_later_write_is_refused()
    {
        var collection = $"c{_tag}";
        var counter = $"n{_tag}";
        var (user, home) = await Http.CreateUserAsync(system.Edge, "eu");
        Assert.Equal("eu-west", home);
        using var west = TestCredentials.CreateClient(system.Api("eu-west").BaseAddress, TimeSpan.FromSeconds(30));
        using var central = TestCredentials.CreateClient(system.Api("eu-central").BaseAddress, TimeSpan.FromSeconds(30));
        Assert.True(await Http.UntilAsync(() => UserKnownAsync(central, user), TimeSpan.FromSeconds(30)), "eu-central did not receive the user within 30 s");

        // Writes through both eu regions: canary bodies, collection, keys and counter names, Idempotency-Keys.
        Assert.Equal(HttpStatusCode.Created, await PutAsync(west, user, collection, $"kw{_tag}", null));
        Assert.Equal(HttpStatusCode.Created, await PutAsync(west, user, collection, $"kwi{_tag}", $"iw{_tag}"));
        Assert.Equal(HttpStatusCode.Created, await PutAsync(central, user, collection, $"kc{_tag}", null));
        Assert.Equal(HttpStatusCode.Created, await PutAsync(central, user, collection, $"kci{_tag}", $"ic{_tag}"));
        Assert.Equal(HttpStatusCode.OK, await IncrementAsync(west, user, counter, $"iwn{_tag}"));
        Assert.Equal(HttpStatusCode.OK, await IncrementAsync(central, user, counter, null));

        // A concurrent same-key conflict: both regions write the key while their streams are cut, so neither saw the other.
        var replicator = system.Service("Replicator", "eu-central");
        // (Stopped, not suspended: a suspended replicator can hold a user's lock in an open apply transaction.)
        await replicator.StopAsync();
        Assert.Equal(HttpStatusCode.Created, await PutAsync(west, user, collection, $"kx{_tag}", null));
        Assert.Equal(HttpStatusCode.Created, await PutAsync(central, user, collection, $"kx{_tag}", null));
        await replicator.StartAsync(system.Topology.ReadyTimeout, Ct);
        Assert.True(await Http.UntilAsync(async () => await CountAsync("eu-west", "conflicts", user) > 0 && await CountAsync("eu-central", "conflicts", user) > 0
            && await CountAsync("eu-west", "documents", user) == 5 && await CountAsync("eu-central", "documents", user) == 5, TimeSpan.FromSeconds(30)),
            "the two eu regions did not converge (5 documents, a logged conflict each) within 30 s");

        // Reads through both regions fill their caches with canary keys and bodies.
        foreach (var client in new[] { west, central })
        {
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(client.GetAsync(Doc(user, collection, $"kw{_tag}"), Ct)));
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(client.GetAsync(Doc(user, collection, $"kx{_tag}"), Ct)));
        }

        Assert.NotEmpty(await RedisHitsAsync("eu-central"));
        Assert.NotEmpty(await ScanAsync()); // the scan sees the canaries while they are there

        // Erase through the edge while eu-central's replicator is down (it resumes from its durable state: a restart).
        await replicator.StopAsync();
        using (var erase = await system.Edge.DeleteAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, erase.StatusCode);
        }

        using (var gone = await system.Edge.GetAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct))
        {
            Assert.Equal("urn:geo:problem:user-not-found", await Http.ProblemTypeAsync(gone));
        }

        Assert.Equal(HttpStatusCode.NotFound, await PutAsync(west, user, collection, $"kafter{_tag}", null));
        Assert.Equal(1, await CountAsync("eu-west", "erased_users", user));   // progress: done in eu-west ...
        Assert.Equal(0, await CountAsync("eu-central", "erased_users", user)); // ... pending in eu-central

        // Cut off, eu-central has not heard of the erase and still takes a write; the erase must remove it when it arrives.
        Assert.Equal(HttpStatusCode.Created, await PutAsync(central, user, collection, $"klate{_tag}", null));
        await replicator.StartAsync(system.Topology.ReadyTimeout, Ct);
        Assert.True(await Http.UntilAsync(async () => await CountAsync("eu-central", "erased_users", user) == 1, TimeSpan.FromSeconds(60)),
            "eu-central did not complete the erase within 60 s of its replicator resuming");
        Assert.True(await Http.UntilAsync(async () => (await ScanAsync()).Count == 0, TimeSpan.FromSeconds(20)),
            "canary strings remain:\n" + string.Join('\n', (await ScanAsync()).Take(20)));

        // Every later write is refused: a local write in every region ...
        foreach (var region in GeoSystem.RegionIds)
        {
            using var api = TestCredentials.CreateClient(system.Api(region).BaseAddress, TimeSpan.FromSeconds(30));
            // An API drops an erased user from its 60 s lookup cache when it next reads the directory's erase markers
            // (every 250 ms, RegionService/Directory/DirectoryConnection.cs), so its reads turn 404 shortly after the
            // shards are clean, not at the same instant; its writes are refused by the shard meanwhile (checked below).
            Assert.True(await Http.UntilAsync(async () => !await UserKnownAsync(api, user), TimeSpan.FromSeconds(10)), $"{region} still answers for the erased user");
            using var put = await api.PutAsync(Doc(user, "after", "k"), Http.Json("{\"v\":1}"), Ct);
            Assert.True(put.StatusCode == HttpStatusCode.NotFound, $"{region}: {(int)put.StatusCode}");
            Assert.Equal("urn:geo:problem:user-not-found", await Http.ProblemTypeAsync(put));
        }

        // ... and a replicated write with a version newer than the erase: injected into eu-west's change log as if its API
        // had written it, shipped by eu-west's replicator, and refused by eu-central's.
        var injected = await InjectNewerChangeAsync(user);
        Assert.True(await Http.UntilAsync(async () => await ShippedThroughAsync(injected) >= injected.Seq, TimeSpan.FromSeconds(30)),
            "eu-west's replicator did not ship the injected change within 30 s");
        Assert.Equal(0, await CountAsync("eu-central", "documents", user));
        Assert.Equal(0, await CountAsync("eu-central", "change_log", user, "kind <> 'user_erase'"));
    }

    private static Uri Doc(string user, string collection, string key) => new($"/v1/users/{user}/docs/{collection}/{key}", UriKind.Relative);

    private async Task<HttpStatusCode> PutAsync(HttpClient client, string user, string collection, string key, string? idempotencyKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, Doc(user, collection, key)) { Content = Http.Json($"{{\"secret\":\"b{_tag}-{key}\"}}") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await client.SendAsync(request, Ct);
        if ((int)response.StatusCode >= 500)
        {
            Assert.Fail($"PUT {key} at {client.BaseAddress}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        return response.StatusCode;
    }

    private static async Task<HttpStatusCode> IncrementAsync(HttpClient client, string user, string counter, string? idempotencyKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"/v1/users/{user}/counters/{counter}", UriKind.Relative)) { Content = Http.Json("{\"delta\":3}") };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await client.SendAsync(request, Ct);
        return response.StatusCode;
    }

    private static async Task<HttpStatusCode> StatusAsync(Task<HttpResponseMessage> sending)
    {
        using var response = await sending;
        return response.StatusCode;
    }

    private static async Task<bool> UserKnownAsync(HttpClient client, string user)
    {
        using var response = await client.GetAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct);
        return response.StatusCode == HttpStatusCode.OK;
    }

    private Task<long> CountAsync(string region, string table, string user, string? and = null)
        => system.Topology.SumOverShardsAsync(region, $"SELECT count(*) FROM {table} WHERE user_id = @u" + (and is null ? "" : $" AND {and}"), user);

    private JsonNode Region(string region) => JsonNode.Parse(File.ReadAllText(system.Topology.Path))!["regions"]![region]!;

    /// <summary>
    /// Every place a canary is found: each row (as text, every column) of every table of every shard and directory
    /// database of every region, each Redis key and value of every region's database, each log line of every process.
    /// </summary>
    private async Task<List<string>> ScanAsync()
    {
        var found = new List<string>();
        foreach (var region in GeoSystem.RegionIds)
        {
            var databases = system.Topology.Shards.Where(s => s.Key.StartsWith(region + "-", StringComparison.Ordinal)).ToList();
            databases.Add(new($"{region} directory", Region(region)["directoryDatabase"]!.GetValue<string>()));
            foreach (var (name, connectionString) in databases)
            {
                found.AddRange((await ScanDatabaseAsync(connectionString)).Select(hit => $"{name}: {hit}"));
            }

            found.AddRange((await RedisHitsAsync(region)).Select(hit => $"{region} redis: {hit}"));
        }

        found.AddRange(system.AllLogs.Where(l => l.Contains(_tag, StringComparison.Ordinal)).Select(l => "log: " + l[..Math.Min(l.Length, 300)]));
        return found;
    }

    private async Task<List<string>> ScanDatabaseAsync(string connectionString)
    {
        var hits = new List<string>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        var tables = new List<string>();
        await using (var list = new NpgsqlCommand("SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')", connection))
        await using (var reader = await list.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct))
            {
                tables.Add(reader.GetString(0));
            }
        }

        foreach (var table in tables)
        {
            // The whole row as text: every column, jsonb bodies included.
            await using var scan = new NpgsqlCommand($"SELECT t::text FROM {table} AS t WHERE strpos(t::text, @tag) > 0 LIMIT 5", connection);
            scan.Parameters.AddWithValue("tag", _tag);
            await using var reader = await scan.ExecuteReaderAsync(Ct);
            while (await reader.ReadAsync(Ct))
            {
                hits.Add($"{table}: {reader.GetString(0)[..Math.Min(reader.GetString(0).Length, 200)]}");
            }
        }

        return hits;
    }

    private async Task<List<string>> RedisHitsAsync(string region)
    {
        var configuration = Region(region)["redis"]!.GetValue<string>();
        var options = ConfigurationOptions.Parse(configuration);
        await using var redis = await ConnectionMultiplexer.ConnectAsync(options);
        var db = redis.GetDatabase();
        var hits = new List<string>();
        foreach (var endpoint in redis.GetEndPoints())
        {
            await foreach (var key in redis.GetServer(endpoint).KeysAsync(options.DefaultDatabase ?? 0, pattern: "*", pageSize: 1000))
            {
                var value = await db.KeyTypeAsync(key) switch
                {
                    RedisType.String => (string?)await db.StringGetAsync(key) ?? "",
                    RedisType.Set => string.Join(',', (await db.SetMembersAsync(key)).Select(m => (string?)m)),
                    RedisType.Hash => string.Join(',', (await db.HashGetAllAsync(key)).Select(e => $"{e.Name}={e.Value}")),
                    _ => "",
                };
                if (((string?)key ?? "").Contains(_tag, StringComparison.Ordinal) || value.Contains(_tag, StringComparison.Ordinal))
                {
                    hits.Add($"{key} = {value[..Math.Min(value.Length, 200)]}");
                }
            }
        }

        return hits;
    }

    private sealed record Injected(string ConnectionString, string Shard, long Seq);

    /// <summary>Appends a document change for the erased user to eu-west's change log, one second newer than now (inside the skew bound).</summary>
    private async Task<Injected> InjectNewerChangeAsync(string user)
    {
        foreach (var (shard, connectionString) in system.Topology.Shards.Where(s => s.Key.StartsWith("eu-west-", StringComparison.Ordinal)))
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(Ct);
            await using var insert = new NpgsqlCommand("""
                INSERT INTO change_log (seq, bucket, user_id, kind, collection, key, body, deleted, version_hlc, version_origin, origin, created_at)
                SELECT nextval('change_log_seq_seq'), bucket, user_id, 'doc', 'injected', 'newer', '{"injected":true}', false,
                       ((extract(epoch FROM now()) * 1000)::bigint + 1000) << 16, 'eu-west', 'eu-west', now()
                FROM erased_users WHERE user_id = @u
                RETURNING seq
                """, connection);
            insert.Parameters.AddWithValue("u", user);
            if (await insert.ExecuteScalarAsync(Ct) is long seq)
            {
                return new Injected(connectionString, shard, seq);
            }
        }

        throw new InvalidOperationException("no eu-west shard holds the user's erase marker");
    }

    /// <summary>How far eu-west's sender has had eu-central acknowledge the injected change's shard stream.</summary>
    private async Task<long> ShippedThroughAsync(Injected injected)
    {
        await using var connection = new NpgsqlConnection(injected.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var query = new NpgsqlCommand("SELECT coalesce(max(last_seq), 0) FROM replication_checkpoints WHERE peer = 'eu-central' AND stream = @s", connection);
        query.Parameters.AddWithValue("s", injected.Shard);
        return (long)(await query.ExecuteScalarAsync(Ct))!;
    }
}
