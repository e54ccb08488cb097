using System.Net;
using System.Text;
using System.Text.Json;
using Geo.Testing.Services;

namespace Geo.RegionService.Tests;

[Collection(ClusterCollection.Name)]
public sealed class RegionApiTests(RegionCluster cluster)
{
    private HttpClient Eu => cluster.Eu;

    [Fact]
    public async Task The_documented_walk_through_works_against_a_running_region()
    {
        var ct = TestContext.Current.CancellationToken;
        // Create an eu user at eu-west.
        using var created = await Eu.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{\"residency\":\"eu\",\"homeRegion\":\"eu-west\"}"), ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using var user = JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct));
        var userId = user.RootElement.GetProperty("userId").GetString()!;
        Assert.Equal(7, Guid.Parse(userId).Version);
        Assert.Equal($"/v1/users/{userId}", created.Headers.Location?.OriginalString);
        Assert.Equal("eu-west", user.RootElement.GetProperty("homeRegion").GetString());
        Assert.Equal(["eu-central", "eu-west"], user.RootElement.GetProperty("regions").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("eu-west", created.Headers.GetValues("Geo-Region").Single());

        using (var got = await Eu.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.OK, got.StatusCode);
            Assert.Equal("eu-west", got.Headers.GetValues("Geo-Home-Region").Single());
        }

        // PUT a doc (201), replace it (200), GET returns it with the same ETag.
        var doc = $"/v1/users/{userId}/docs/notes/first";
        using var put = await Eu.PutAsync(new Uri(doc, UriKind.Relative), Http.Json("{\"text\":\"hello\"}"), ct);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        using var replace = await Eu.PutAsync(new Uri(doc, UriKind.Relative), Http.Json("{\"text\":\"hello again\"}"), ct);
        Assert.Equal(HttpStatusCode.OK, replace.StatusCode);
        var etag = Http.ETag(replace);
        Assert.NotNull(etag);
        Assert.NotEqual(Http.ETag(put), etag);

        using (var get = await Eu.GetAsync(new Uri(doc, UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(etag, Http.ETag(get));
            using var body = JsonDocument.Parse(await get.Content.ReadAsStringAsync(ct));
            Assert.Equal("hello again", body.RootElement.GetProperty("text").GetString());
        }

        // List, with paging.
        using (var second = await Eu.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/second", UriKind.Relative), Http.Json("[1,2,3]"), ct))
        {
            Assert.Equal(HttpStatusCode.Created, second.StatusCode);
        }

        using (var page1 = await Eu.GetAsync(new Uri($"/v1/users/{userId}/docs/notes?limit=1", UriKind.Relative), ct))
        {
            using var list = JsonDocument.Parse(await page1.Content.ReadAsStringAsync(ct));
            Assert.Equal("first", list.RootElement.GetProperty("items")[0].GetProperty("key").GetString());
            Assert.Equal(etag!.Trim('"'), list.RootElement.GetProperty("items")[0].GetProperty("version").GetString()); // bare token; the header keeps its quotes
            Assert.Equal("first", list.RootElement.GetProperty("next").GetString());
        }

        using (var page2 = await Eu.GetAsync(new Uri($"/v1/users/{userId}/docs/notes?limit=1&after=first", UriKind.Relative), ct))
        {
            using var list = JsonDocument.Parse(await page2.Content.ReadAsStringAsync(ct));
            Assert.Equal("second", list.RootElement.GetProperty("items")[0].GetProperty("key").GetString());
            Assert.Equal(3, list.RootElement.GetProperty("items")[0].GetProperty("body").GetArrayLength());
            Assert.Equal(JsonValueKind.Null, list.RootElement.GetProperty("next").ValueKind);
        }

        // Counter increments add up.
        foreach (var delta in new[] { 5, -2, 10 })
        {
            using var inc = await Eu.PostAsync(new Uri($"/v1/users/{userId}/counters/visits", UriKind.Relative), Http.Json($"{{\"delta\":{delta}}}"), ct);
            Assert.Equal(HttpStatusCode.OK, inc.StatusCode);
        }

        using (var counter = await Eu.GetAsync(new Uri($"/v1/users/{userId}/counters/visits", UriKind.Relative), ct))
        {
            using var value = JsonDocument.Parse(await counter.Content.ReadAsStringAsync(ct));
            Assert.Equal(13, value.RootElement.GetProperty("value").GetInt64());
        }

        // DELETE → 204, then GET → 404.
        using (var delete = await Eu.DeleteAsync(new Uri(doc, UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        using (var gone = await Eu.GetAsync(new Uri(doc, UriKind.Relative), ct))
        {
            await Http.ProblemAsync(gone, HttpStatusCode.NotFound, "document-not-found");
        }

        // Erase the user: every document and counter goes; the user is unknown afterwards.
        using (var erase = await Eu.DeleteAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), ct))
        {
            Assert.Equal(HttpStatusCode.NoContent, erase.StatusCode);
        }

        using (var unknown = await Eu.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), ct))
        {
            await Http.ProblemAsync(unknown, HttpStatusCode.NotFound, "user-not-found");
        }

        Assert.Equal(0, await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM documents WHERE user_id = @u AND NOT deleted", userId));
        cluster.AssertNoErrorsLogged();
    }

    [Fact]
    public async Task Bad_input_gets_the_documented_status_and_leaves_no_partial_row()
    {
        var ct = TestContext.Current.CancellationToken;
        var userId = await Http.CreateUserAsync(Eu);
        var doc = $"/v1/users/{userId}/docs/notes/k1";
        using (var first = await Eu.PutAsync(new Uri(doc, UriKind.Relative), Http.Json("{\"v\":1}"), ct))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        async Task<(long Docs, long Log, long Idem)> Counts() => (
            await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM documents WHERE user_id = @u", userId),
            await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM change_log WHERE user_id = @u", userId),
            await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM idempotency WHERE user_id = @u", userId));
        var before = await Counts();

        // Malformed JSON → 400.
        using (var r = await Eu.PutAsync(new Uri(doc, UriKind.Relative), Http.Json("{\"v\":"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.BadRequest, "malformed-json");
        }

        // 70 KiB body → 413.
        var big = "{\"blob\":\"" + new string('x', 70 * 1024) + "\"}";
        using (var r = await Eu.PutAsync(new Uri(doc, UriKind.Relative), Http.Json(big), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.RequestEntityTooLarge, "body-too-large");
        }

        // Not JSON → 415.
        using (var r = await Eu.PutAsync(new Uri(doc, UriKind.Relative), new StringContent("v=1", Encoding.UTF8, "text/plain"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
        }

        // Bad collection name → 400.
        using (var r = await Eu.PutAsync(new Uri($"/v1/users/{userId}/docs/Bad.Name/k1", UriKind.Relative), Http.Json("{}"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.BadRequest, "invalid-name");
        }

        // Unknown user → 404 (well-formed id, and garbage id).
        using (var r = await Eu.PutAsync(new Uri($"/v1/users/{Guid.CreateVersion7()}/docs/notes/k1", UriKind.Relative), Http.Json("{}"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.NotFound, "user-not-found");
        }

        using (var r = await Eu.GetAsync(new Uri("/v1/users/not-a-user", UriKind.Relative), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.NotFound, "user-not-found");
        }

        // Wrong If-Match → 412, and so is a tag this service never issued (RFC 9110: it cannot match).
        using (var r = await Eu.SendAsync(Http.Request(HttpMethod.Put, doc, "{\"v\":2}", ifMatch: "\"0000000000000001-eu-west\""), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.PreconditionFailed, "precondition-failed");
        }

        using (var r = await Eu.SendAsync(Http.Request(HttpMethod.Delete, doc, ifMatch: "\"0000000000000001-eu-west\""), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.PreconditionFailed, "precondition-failed");
        }

        using (var r = await Eu.SendAsync(Http.Request(HttpMethod.Put, doc, "{\"v\":2}", ifMatch: "\"nope\""), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.PreconditionFailed, "precondition-failed");
        }

        // Reused idempotency key with another payload → 422.
        using (var r = await Eu.SendAsync(Http.Request(HttpMethod.Put, doc, "{\"v\":3}", idempotencyKey: "k-reuse"), ct))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        var afterGoodWrite = await Counts();
        using (var r = await Eu.SendAsync(Http.Request(HttpMethod.Put, doc, "{\"v\":4}", idempotencyKey: "k-reuse"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.UnprocessableEntity, "idempotency-key-reused");
        }

        // Bad counter input → 400; unknown residency → 400; bad limit → 400.
        using (var r = await Eu.PostAsync(new Uri($"/v1/users/{userId}/counters/c", UriKind.Relative), Http.Json("{\"delta\":1.5}"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.BadRequest, "invalid-request");
        }

        using (var r = await Eu.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{\"residency\":\"mars\"}"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.BadRequest, "unknown-residency");
        }

        using (var r = await Eu.GetAsync(new Uri($"/v1/users/{userId}/docs/notes?limit=0", UriKind.Relative), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.BadRequest, "invalid-request");
        }

        // Nothing of the refused requests reached the shard: the only change is the one acknowledged write.
        Assert.Equal(before.Docs, (await Counts()).Docs);
        Assert.Equal(before.Log + 1, afterGoodWrite.Log);
        Assert.Equal(afterGoodWrite, await Counts());
        using (var r = await Eu.GetAsync(new Uri(doc, UriKind.Relative), ct))
        {
            using var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync(ct));
            Assert.Equal(3, body.RootElement.GetProperty("v").GetInt32());
        }

        cluster.AssertNoErrorsLogged();
    }

    [Fact]
    public async Task A_user_whose_residency_excludes_the_region_is_refused_with_421()
    {
        var ct = TestContext.Current.CancellationToken;
        // Creating an eu user through the us-east API is refused: us-east may not hold eu data.
        using (var r = await cluster.Us.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{\"residency\":\"eu\"}"), ct))
        {
            var problem = await Http.ProblemAsync(r, HttpStatusCode.MisdirectedRequest, "region-not-allowed");
            Assert.Contains("eu-west", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        // An eu user known to the us-east directory (as directory replication makes it) is refused there too.
        var userId = await Http.CreateUserAsync(Eu);
        await DirectoryReplication.CopyUserAsync(cluster.EuDirectory.BaseAddress, cluster.UsDirectory.BaseAddress, userId, ct);
        using (var r = await cluster.Us.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/x", UriKind.Relative), Http.Json("{}"), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.MisdirectedRequest, "region-not-allowed");
        }

        using (var r = await cluster.Us.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), ct))
        {
            await Http.ProblemAsync(r, HttpStatusCode.MisdirectedRequest, "region-not-allowed");
        }

        Assert.Equal(0, await cluster.SumOverShardsAsync("us-east", "SELECT count(*) FROM documents WHERE user_id = @u", userId));
    }

    [Fact]
    public async Task Saturation_answers_503_with_Retry_After_fast()
    {
        var ct = TestContext.Current.CancellationToken;
        var userId = await Http.CreateUserAsync(Eu);
        using var limited = TestCredentials.CreateClient(cluster.EuApiLimited.BaseAddress);
        // 40 concurrent writes against a limit of 1 with no queue: some must be shed, none may fail otherwise.
        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(i =>
            limited.PutAsync(new Uri($"/v1/users/{userId}/docs/load/k{i}", UriKind.Relative), Http.Json("{\"i\":" + i + "}"), ct)));
        try
        {
            var statuses = responses.Select(r => r.StatusCode).ToArray();
            Assert.Contains(HttpStatusCode.ServiceUnavailable, statuses);
            Assert.Contains(HttpStatusCode.Created, statuses);
            Assert.All(statuses, s => Assert.True(s is HttpStatusCode.Created or HttpStatusCode.ServiceUnavailable, s.ToString()));
            var shed = responses.First(r => r.StatusCode == HttpStatusCode.ServiceUnavailable);
            Assert.Equal("1", shed.Headers.GetValues("Retry-After").Single());
            await Http.ProblemAsync(shed, HttpStatusCode.ServiceUnavailable, "overloaded");
            // Every acknowledged write exists; no shed write left a row.
            Assert.Equal(statuses.Count(s => s == HttpStatusCode.Created),
                await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM documents WHERE user_id = @u AND collection = 'load'", userId));
        }
        finally
        {
            foreach (var response in responses)
            {
                response.Dispose();
            }
        }
    }

    [Fact]
    public async Task Infrastructure_endpoints_answer()
    {
        var ct = TestContext.Current.CancellationToken;
        using var openapi = await Eu.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, openapi.StatusCode);
        Assert.Contains("/v1/users/{userId}/docs/{collection}/{key}", await openapi.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);

        using var metrics = await Eu.GetAsync(new Uri("/metrics", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        Assert.Contains("http_server_request_duration", await metrics.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);

        using var live = await Eu.GetAsync(new Uri("/healthz/live", UriKind.Relative), ct);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);

        using var missing = await Eu.GetAsync(new Uri("/v2/nothing", UriKind.Relative), ct);
        await Http.ProblemAsync(missing, HttpStatusCode.NotFound, "not-found");
    }
}
