using System.Net;
using System.Text;
using System.Text.Json;

namespace Geo.EdgeRouter.Tests.Cluster;

/// <summary>
/// Each request that once answered 500 (and with it ejected a healthy region from the edge for the reactivation
/// period) now answers a 4xx problem+json, at the edge and at the regional API; afterwards every eu region still serves
/// its users through the edge, from home, without <c>Geo-Failover</c>.
/// </summary>
[Collection(EdgeClusterCollection.Name)]
public sealed class BadInputTests(EdgeCluster cluster) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] EuRegions = ["eu-west", "eu-central"];

    private readonly Dictionary<string, string> _users = [];

    public async ValueTask InitializeAsync()
    {
        await cluster.RestoreAsync();
        foreach (var region in EuRegions)
        {
            var (userId, created) = await Http.CreateUserAsync(cluster.Client, "eu", homeRegion: region);
            created.Dispose();
            _users[region] = userId;
        }
    }

    public ValueTask DisposeAsync()
    {
        var errors = cluster.EdgeErrorLogs.ToList();
        Assert.True(errors.Count == 0, "the edge logged errors:\n" + string.Join('\n', errors.Take(5)));
        return ValueTask.CompletedTask;
    }

    public static TheoryData<string, string, string, string?, string?, int, string> Requests => new()
    {
        // via, method, path ({user} = the eu-west user), body, content type (null: JSON), status, problem type
        { "api", "GET", "/v1/users/{USER}", null, null, 404, "user-not-found" },
        { "api", "GET", "/v1/users/%20{user}", null, null, 404, "user-not-found" },
        { "edge", "GET", "/v1/users/{USER}", null, null, 404, "user-not-found" },
        { "edge", "GET", "/v1/users/%20{user}/docs/notes/a", null, null, 404, "user-not-found" },
        { "api", "PUT", "/v1/users/{user}/docs/notes/a", "\"\\ud800\"", null, 400, "invalid-string" },
        { "edge", "PUT", "/v1/users/{user}/docs/notes/a", "{\"s\":\"\\udc00\\ud800\"}", null, 400, "invalid-string" },
        { "edge", "PUT", "/v1/users/{user}/docs/notes/a", "{\"\\ud800\":1}", null, 400, "invalid-string" },
        { "api", "PUT", "/v1/users/{user}/docs/notes/a", "1e1000000", null, 400, "number-out-of-range" },
        { "edge", "PUT", "/v1/users/{user}/docs/notes/a", "1e131071", null, 400, "number-out-of-range" },
        { "edge", "PUT", "/v1/users/{user}/docs/notes/a", "[" + string.Join(",", Enumerable.Repeat("1e300", 300)) + "]", null, 413, "body-too-large" },
        { "edge", "PUT", "/v1/users/{user}/docs/notes/a", "{\"s\":\"\\u0000\"}", null, 400, "invalid-string" },
        { "edge", "PUT", "/v1/users/{user}/docs/notes/a", "{\"s\":\"\xFF\"}", "latin1", 400, "invalid-utf8" },
        { "edge", "POST", "/v1/users", "{\"residency\":\"\\ud800\"}", null, 400, "invalid-string" },
        { "api", "POST", "/v1/users", "{\"residency\":\"\\ud800\"}", null, 400, "invalid-string" },
        { "edge", "POST", "/v1/users", "{\"residency\":\"\xFF\"}", "latin1", 400, "invalid-utf8" },
        { "edge", "POST", "/v1/users/{user}/counters/c", "{\"delta\":1e400}", null, 400, "number-out-of-range" },
        { "edge", "PUT", "/v1/users/{user}/docs/notes/a", new string('[', 65) + new string(']', 65), null, 400, "malformed-json" },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task A_hostile_request_is_a_4xx_problem_and_costs_no_region(string via, string method, string path, string? body, string? encoding, int status, string type)
    {
        var userId = _users["eu-west"];
        path = path.Replace("{USER}", userId.ToUpperInvariant(), StringComparison.Ordinal).Replace("{user}", userId, StringComparison.Ordinal);
        using var api = cluster.ApiClient("eu-west");
        var client = via == "edge" ? cluster.Client : api;
        using var request = new HttpRequestMessage(new HttpMethod(method), new Uri(path, UriKind.Relative));
        if (body is not null)
        {
            var bytes = encoding == "latin1" ? Encoding.Latin1.GetBytes(body) : Encoding.UTF8.GetBytes(body);
            request.Content = new ByteArrayContent(bytes);
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        }

        var before = await DocumentRowsAsync(userId);
        using (var response = await client.SendAsync(request, Ct))
        {
            await Http.ProblemAsync(response, (HttpStatusCode)status, type);
        }

        Assert.Equal(before, await DocumentRowsAsync(userId));
        await EveryRegionServesItsUsersFromHomeAsync();
    }

    [Fact]
    public async Task A_counter_increment_past_64_bits_is_422_and_the_counter_is_unchanged()
    {
        var userId = _users["eu-west"];
        var counter = new Uri($"/v1/users/{userId}/counters/big", UriKind.Relative);
        using (var first = await cluster.Client.PostAsync(counter, Http.Json($"{{\"delta\":{long.MaxValue}}}"), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using (var second = await cluster.Client.PostAsync(counter, Http.Json($"{{\"delta\":{long.MaxValue}}}"), Ct))
        {
            await Http.ProblemAsync(second, HttpStatusCode.UnprocessableEntity, "counter-overflow");
        }

        using (var read = await cluster.Client.GetAsync(counter, Ct))
        {
            using var json = JsonDocument.Parse(await read.Content.ReadAsStringAsync(Ct));
            Assert.Equal(long.MaxValue, json.RootElement.GetProperty("value").GetInt64());
        }

        await EveryRegionServesItsUsersFromHomeAsync();
    }

    [Fact]
    public async Task If_match_and_if_none_match_follow_rfc_9110_and_version_is_the_bare_token()
    {
        var doc = new Uri($"/v1/users/{_users["eu-west"]}/docs/notes/cond", UriKind.Relative);
        using (var absent = await SendAsync(HttpMethod.Put, doc, "{\"v\":0}", ("If-Match", "*")))
        {
            await Http.ProblemAsync(absent, HttpStatusCode.PreconditionFailed, "precondition-failed");
        }

        string etag;
        using (var created = await SendAsync(HttpMethod.Put, doc, "{\"v\":1}", ("If-None-Match", "*")))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            etag = created.Headers.ETag!.Tag;
            using var json = JsonDocument.Parse(await created.Content.ReadAsStringAsync(Ct));
            Assert.Equal(etag.Trim('"'), json.RootElement.GetProperty("version").GetString());
            Assert.StartsWith("\"", etag, StringComparison.Ordinal);
        }

        using (var again = await SendAsync(HttpMethod.Put, doc, "{\"v\":2}", ("If-None-Match", "*")))
        {
            await Http.ProblemAsync(again, HttpStatusCode.PreconditionFailed, "precondition-failed");
        }

        using (var unknown = await SendAsync(HttpMethod.Put, doc, "{\"v\":2}", ("If-Match", "\"not-a-version-we-issued\"")))
        {
            await Http.ProblemAsync(unknown, HttpStatusCode.PreconditionFailed, "precondition-failed");
        }

        using (var weak = await SendAsync(HttpMethod.Put, doc, "{\"v\":2}", ("If-Match", "W/" + etag)))
        {
            await Http.ProblemAsync(weak, HttpStatusCode.PreconditionFailed, "precondition-failed");
        }

        using (var any = await SendAsync(HttpMethod.Put, doc, "{\"v\":2}", ("If-Match", "*")))
        {
            Assert.Equal(HttpStatusCode.OK, any.StatusCode);
        }

        using (var mixed = await SendAsync(HttpMethod.Put, doc, "{\"v\":3}", ("If-Match", "*, " + etag)))
        {
            await Http.ProblemAsync(mixed, HttpStatusCode.BadRequest, "invalid-request");
        }

        await EveryRegionServesItsUsersFromHomeAsync();
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, string body, (string Name, string Value) header)
    {
        using var request = new HttpRequestMessage(method, uri) { Content = Http.Json(body) };
        request.Headers.TryAddWithoutValidation(header.Name, header.Value);
        return await cluster.Client.SendAsync(request, Ct);
    }

    /// <summary>Through the edge, each eu user is served by its home region: no destination was ejected.</summary>
    private async Task EveryRegionServesItsUsersFromHomeAsync()
    {
        foreach (var (home, userId) in _users)
        {
            using var response = await cluster.Client.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(home, Http.Header(response, "Geo-Region"));
            Assert.Null(Http.Header(response, "Geo-Failover"));
        }
    }

    private Task<long> DocumentRowsAsync(string userId)
        => cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM documents WHERE user_id = @u", userId);
}
