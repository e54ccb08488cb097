using System.Net;
using System.Text.Json;
using Npgsql;
using StackExchange.Redis;

namespace Geo.RegionService.Tests;

[Collection(ClusterCollection.Name)]
public sealed class IdempotencyAndCacheTests(RegionCluster cluster)
{
    private HttpClient Eu => cluster.Eu;

    [Fact]
    public async Task Twenty_parallel_identical_requests_with_one_key_make_one_row_and_one_change()
    {
        var ct = TestContext.Current.CancellationToken;
        var userId = await Http.CreateUserAsync(Eu);
        var path = $"/v1/users/{userId}/docs/orders/o-1";
        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ =>
            Eu.SendAsync(Http.Request(HttpMethod.Put, path, "{\"total\":42}", idempotencyKey: "order-1"), ct)));
        try
        {
            // Each is either the one execution, a replay of it, or told the key is in flight; none is a second write.
            var statuses = responses.Select(r => r.StatusCode).ToArray();
            Assert.All(statuses, s => Assert.True(s is HttpStatusCode.Created or HttpStatusCode.Conflict, s.ToString()));
            Assert.Contains(HttpStatusCode.Created, statuses);
            var etags = responses.Where(r => r.StatusCode == HttpStatusCode.Created).Select(Http.ETag).Distinct().ToArray();
            Assert.Single(etags);
        }
        finally
        {
            foreach (var r in responses)
            {
                r.Dispose();
            }
        }

        Assert.Equal(1, await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM documents WHERE user_id = @u", userId));
        Assert.Equal(1, await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM change_log WHERE user_id = @u", userId));

        // Afterwards the key replays the stored response exactly.
        using var replay = await Eu.SendAsync(Http.Request(HttpMethod.Put, path, "{\"total\":42}", idempotencyKey: "order-1"), ct);
        Assert.Equal(HttpStatusCode.Created, replay.StatusCode);
        Assert.Equal("true", replay.Headers.GetValues("Idempotent-Replayed").Single());
        Assert.Equal(1, await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM change_log WHERE user_id = @u", userId));
    }

    [Fact]
    public async Task A_user_create_with_an_idempotency_key_makes_one_user_however_often_it_is_sent()
    {
        var ct = TestContext.Current.CancellationToken;
        var key = "create-" + Guid.NewGuid().ToString("N");
        const string body = "{\"residency\":\"eu\"}";

        // Ten at once, then one more later: every answer is 201 with the same user, one user exists.
        var responses = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ =>
            Eu.SendAsync(Http.Request(HttpMethod.Post, "/v1/users", body, idempotencyKey: key), ct)));
        var ids = new List<string>();
        try
        {
            foreach (var response in responses)
            {
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
                ids.Add(document.RootElement.GetProperty("userId").GetString()!);
            }

            Assert.Single(responses, r => !r.Headers.Contains("Idempotent-Replayed"));
        }
        finally
        {
            foreach (var r in responses)
            {
                r.Dispose();
            }
        }

        var userId = Assert.Single(ids.Distinct());
        using (var later = await Eu.SendAsync(Http.Request(HttpMethod.Post, "/v1/users", body, idempotencyKey: key), ct))
        {
            Assert.Equal(HttpStatusCode.Created, later.StatusCode);
            Assert.Equal("true", later.Headers.GetValues("Idempotent-Replayed").Single());
            Assert.Equal($"/v1/users/{userId}", later.Headers.Location?.OriginalString);
            using var document = JsonDocument.Parse(await later.Content.ReadAsStringAsync(ct));
            Assert.Equal(userId, document.RootElement.GetProperty("userId").GetString());
        }

        // The same key with another payload is refused and creates nothing.
        using (var other = await Eu.SendAsync(Http.Request(HttpMethod.Post, "/v1/users", "{\"residency\":\"global\"}", idempotencyKey: key), ct))
        {
            await Http.ProblemAsync(other, HttpStatusCode.UnprocessableEntity, "idempotency-key-reused");
        }

        await using var directory = new NpgsqlConnection(cluster.DirectoryDatabases["eu-west"]);
        await directory.OpenAsync(ct);
        await using var count = new NpgsqlCommand("SELECT count(*) FROM directory_create_keys WHERE idempotency_key = @k", directory);
        count.Parameters.AddWithValue("k", key);
        Assert.Equal(1L, await count.ExecuteScalarAsync(ct));
        await using var users = new NpgsqlCommand(
            "SELECT count(*) FROM directory_users u JOIN directory_create_keys k ON k.user_id = u.user_id WHERE k.idempotency_key = @k", directory);
        users.Parameters.AddWithValue("k", key);
        Assert.Equal(1L, await users.ExecuteScalarAsync(ct));

        // A key that is not printable ASCII or too long is a 400, not a 500.
        using var tooLong = await Eu.SendAsync(Http.Request(HttpMethod.Post, "/v1/users", body, idempotencyKey: new string('k', 257)), ct);
        await Http.ProblemAsync(tooLong, HttpStatusCode.BadRequest, "invalid-request");
    }

    [Fact]
    public async Task A_concurrent_duplicate_answers_409_and_counters_replay_their_value()
    {
        var ct = TestContext.Current.CancellationToken;
        var userId = await Http.CreateUserAsync(Eu);
        var path = $"/v1/users/{userId}/counters/points";

        using (var first = await Eu.SendAsync(Http.Request(HttpMethod.Post, path, "{\"delta\":7}", idempotencyKey: "c-1"), ct))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using (var again = await Eu.SendAsync(Http.Request(HttpMethod.Post, path, "{\"delta\":7}", idempotencyKey: "c-1"), ct))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.Equal("true", again.Headers.GetValues("Idempotent-Replayed").Single());
            using var body = JsonDocument.Parse(await again.Content.ReadAsStringAsync(ct));
            Assert.Equal(7, body.RootElement.GetProperty("value").GetInt64());
        }

        // A concurrent duplicate: the first request with "c-2" is held inside its write (the counter row is locked
        // by another transaction), so the second request with the same key and payload finds it in flight.
        var shard = cluster.Shards.Where(s => s.Key.StartsWith("eu-west", StringComparison.Ordinal)).Select(s => s.Value).ToArray();
        await using var blocker = await OpenShardHoldingAsync(shard, userId, ct);
        var held = Eu.SendAsync(Http.Request(HttpMethod.Post, path, "{\"delta\":1}", idempotencyKey: "c-2"), ct);
        await WaitUntilAsync(async () => await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM idempotency WHERE user_id = @u AND key = 'c-2'", userId) == 1, ct);
        using (var inFlight = await Eu.SendAsync(Http.Request(HttpMethod.Post, path, "{\"delta\":1}", idempotencyKey: "c-2"), ct))
        {
            await Http.ProblemAsync(inFlight, HttpStatusCode.Conflict, "idempotency-key-in-flight");
        }

        await blocker.Transaction.RollbackAsync(ct);
        using (var done = await held)
        {
            Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        }

        using var value = await Eu.GetAsync(new Uri(path, UriKind.Relative), ct);
        using var counter = JsonDocument.Parse(await value.Content.ReadAsStringAsync(ct));
        Assert.Equal(8, counter.RootElement.GetProperty("value").GetInt64());
    }

    private sealed record Holder(NpgsqlConnection Connection, NpgsqlTransaction Transaction) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Transaction.DisposeAsync();
            await Connection.DisposeAsync();
        }
    }

    // Locks the user's counter rows on whichever shard holds them, in a transaction the caller ends.
    private static async Task<Holder> OpenShardHoldingAsync(string[] shards, string userId, CancellationToken ct)
    {
        foreach (var cs in shards)
        {
            var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync(ct);
            var transaction = await connection.BeginTransactionAsync(ct);
            await using var command = new NpgsqlCommand("SELECT 1 FROM counters WHERE user_id = @u FOR UPDATE", connection, transaction);
            command.Parameters.AddWithValue("u", userId);
            if (await command.ExecuteScalarAsync(ct) is not null)
            {
                return new Holder(connection, transaction);
            }

            await transaction.DisposeAsync();
            await connection.DisposeAsync();
        }

        throw new InvalidOperationException("the user's counter row was not found on any shard");
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken ct)
    {
        for (var i = 0; i < 100; i++)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(50, ct);
        }

        throw new TimeoutException("condition not reached within 5 s");
    }

    [Fact]
    public async Task A_write_invalidates_the_cached_read()
    {
        var ct = TestContext.Current.CancellationToken;
        var userId = await Http.CreateUserAsync(Eu);
        var path = $"/v1/users/{userId}/docs/profile/main";
        using (await Eu.PutAsync(new Uri(path, UriKind.Relative), Http.Json("{\"name\":\"Ada\"}"), ct))
        {
        }

        // A read populates Redis (database 2 is eu-west's in the test topology). Another test may have just restarted
        // Redis: the service's breaker and reconnect take a few seconds, so read until the entry shows up (bounded).
        await using var redis = await ConnectionMultiplexer.ConnectAsync(cluster.Redis.ConnectionString);
        string? cached = null;
        for (var attempt = 0; attempt < 100 && cached is null; attempt++)
        {
            using (var first = await Eu.GetAsync(new Uri(path, UriKind.Relative), ct))
            {
                Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            }

            cached = await redis.GetDatabase(2).StringGetAsync($"geo:d:{{{userId}}}:profile:main");
            if (cached is null)
            {
                await Task.Delay(100, ct);
            }
        }

        Assert.NotNull(cached);
        Assert.Contains("Ada", cached, StringComparison.Ordinal);

        using (var update = await Eu.PutAsync(new Uri(path, UriKind.Relative), Http.Json("{\"name\":\"Grace\"}"), ct))
        {
            Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        }

        using (var second = await Eu.GetAsync(new Uri(path, UriKind.Relative), ct))
        {
            Assert.Contains("Grace", await second.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        }

        using (await Eu.DeleteAsync(new Uri(path, UriKind.Relative), ct))
        {
        }

        using var afterDelete = await Eu.GetAsync(new Uri(path, UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.NotFound, afterDelete.StatusCode);
    }

    [Fact]
    public async Task Reads_are_served_from_Postgres_while_Redis_is_down()
    {
        var ct = TestContext.Current.CancellationToken;
        var userId = await Http.CreateUserAsync(Eu);
        var path = $"/v1/users/{userId}/docs/profile/main";
        using (await Eu.PutAsync(new Uri(path, UriKind.Relative), Http.Json("{\"name\":\"Ada\"}"), ct))
        {
        }

        await cluster.Redis.StopAsync(ct);
        try
        {
            for (var i = 0; i < 20; i++)
            {
                using var read = await Eu.GetAsync(new Uri(path, UriKind.Relative), ct);
                Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            }

            using var write = await Eu.PutAsync(new Uri(path, UriKind.Relative), Http.Json("{\"name\":\"Grace\"}"), ct);
            Assert.Equal(HttpStatusCode.OK, write.StatusCode);
            using var reread = await Eu.GetAsync(new Uri(path, UriKind.Relative), ct);
            Assert.Contains("Grace", await reread.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        }
        finally
        {
            await cluster.Redis.StartAsync(ct);
        }
    }

    [Fact]
    public async Task The_region_keeps_serving_from_its_cached_map_while_the_directory_restarts()
    {
        var ct = TestContext.Current.CancellationToken;
        var userId = await Http.CreateUserAsync(Eu);
        var path = $"/v1/users/{userId}/docs/profile/main";
        using (await Eu.PutAsync(new Uri(path, UriKind.Relative), Http.Json("{\"v\":1}"), ct))
        {
        }

        await cluster.EuDirectory.StopAsync();
        try
        {
            // Known user and known map: reads and writes go on without the directory.
            using var read = await Eu.GetAsync(new Uri(path, UriKind.Relative), ct);
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            using var write = await Eu.PutAsync(new Uri(path, UriKind.Relative), Http.Json("{\"v\":2}"), ct);
            Assert.Equal(HttpStatusCode.OK, write.StatusCode);
            using var health = await Eu.GetAsync(new Uri("/healthz/ready", UriKind.Relative), ct);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }
        finally
        {
            await cluster.EuDirectory.StartAsync(TimeSpan.FromSeconds(60), ct);
        }

        // After the restart new users work again, once the channel has reconnected (its backoff is capped at 2 s).
        cluster.AssertNoErrorsLogged();
        string? another = null;
        for (var attempt = 0; attempt < 50 && another is null; attempt++)
        {
            using var create = await Eu.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{\"residency\":\"eu\"}"), ct);
            if (create.StatusCode == HttpStatusCode.Created)
            {
                another = JsonDocument.Parse(await create.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("userId").GetString();
            }
            else
            {
                await Http.ProblemAsync(create, HttpStatusCode.ServiceUnavailable, "directory-unavailable");
                await Task.Delay(200, ct);
            }
        }

        Assert.NotNull(another);
        Assert.NotEqual(userId, another);
    }
}
