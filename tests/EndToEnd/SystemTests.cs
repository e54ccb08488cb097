using System.Net;
using System.Text.Json;
using Geo.Testing.Services;

namespace Geo.EndToEnd;

/// <summary>The whole story through the us-east edge: placement and routing, failover, 503 instead of misrouting, 429, convergence.</summary>
[Collection(GeoSystemCollection.Name)]
public sealed class SystemTests(GeoSystem system) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private HashSet<string> _errorsBefore = [];

    public async ValueTask InitializeAsync()
    {
        await system.RestoreAsync();
        _errorsBefore = system.ErrorLogs.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Fails on any Error or Critical line a process logged during this test (earlier ones failed their own test).</summary>
    public async ValueTask DisposeAsync()
    {
        await system.RestoreAsync();
        var errors = system.ErrorLogs.Where(l => !_errorsBefore.Contains(l))
            // grpc-dotnet logs at Error when a client resets a call before its request was read; the replicators cancel
            // their directory polls on their own deadlines, which a loaded machine reaches. Known, reported; not this test's subject.
            .Where(l => !(l.StartsWith("[ShardDirectory:", StringComparison.Ordinal) && l.Contains("The client reset the request stream", StringComparison.Ordinal)))
            .ToList();
        Assert.True(errors.Count == 0, "errors logged:\n" + string.Join('\n', errors.Take(5)));
    }

    [Fact]
    public async Task Requests_reach_the_users_home_region_and_the_data_stays_inside_residency()
    {
        var (eu, euHome) = await Http.CreateUserAsync(system.Edge, "eu");
        Assert.Equal("eu-west", euHome); // nearest eu region to us-east (75 ms; eu-central is 90)
        var (pinned, pinnedHome) = await Http.CreateUserAsync(system.Edge, "eu", homeRegion: "eu-central");
        Assert.Equal("eu-central", pinnedHome);
        var (us, usHome) = await Http.CreateUserAsync(system.Edge, "us");
        Assert.Equal("us-east", usHome);

        foreach (var (user, home) in new[] { (eu, "eu-west"), (pinned, "eu-central"), (us, "us-east") })
        {
            using var put = await system.Edge.PutAsync(new Uri($"/v1/users/{user}/docs/notes/home", UriKind.Relative), Http.Json("{\"where\":\"" + home + "\"}"), Ct);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            Assert.Equal(home, Http.Header(put, "Geo-Region"));
            Assert.Equal(home, Http.Header(put, "Geo-Home-Region"));
            Assert.Null(Http.Header(put, "Geo-Failover"));

            using var get = await system.Edge.GetAsync(new Uri($"/v1/users/{user}/docs/notes/home", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(home, Http.Header(get, "Geo-Region"));
            Assert.Contains(home, await get.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        // Replication stays inside residency: the eu users' rows reach the other eu region, never us-east.
        Assert.True(await Http.UntilAsync(async () => await system.Topology.SumOverShardsAsync("eu-central", Documents, eu) == 1, TimeSpan.FromSeconds(30)),
            "the eu-west write did not reach eu-central within 30 s");
        Assert.True(await Http.UntilAsync(async () => await system.Topology.SumOverShardsAsync("eu-west", Documents, pinned) == 1, TimeSpan.FromSeconds(30)),
            "the eu-central write did not reach eu-west within 30 s");
        Assert.Equal(0, await system.Topology.SumOverShardsAsync("us-east", Documents + " OR user_id = @u", eu));
        Assert.Equal(0, await system.Topology.SumOverShardsAsync("us-east", Documents, pinned));
        Assert.Equal(0, await system.Topology.SumOverShardsAsync("eu-west", Documents, us) + await system.Topology.SumOverShardsAsync("eu-central", Documents, us));
    }

    [Fact]
    public async Task A_write_during_failover_converges_on_both_regions_once_home_returns()
    {
        var (user, home) = await Http.CreateUserAsync(system.Edge, "eu");
        Assert.Equal("eu-west", home);
        using (var first = await system.Edge.PutAsync(new Uri($"/v1/users/{user}/docs/profile/name", UriKind.Relative), Http.Json("{\"v\":1}"), Ct))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        // eu-central must know the user (directory entry and first write replicated) before it can take over.
        Assert.True(await Http.UntilAsync(async () => await ReadDirectAsync("eu-central", user) == 1, TimeSpan.FromSeconds(30)),
            "eu-central did not receive the user and its first write within 30 s");

        await system.Api("eu-west").StopAsync(); // killed: a crash, not a drain

        // The next write through the edge goes to eu-central at once: no 502, flagged as failover.
        using (var during = await system.Edge.PutAsync(new Uri($"/v1/users/{user}/docs/profile/name", UriKind.Relative), Http.Json("{\"v\":2}"), Ct))
        {
            var text = await during.Content.ReadAsStringAsync(Ct);
            Assert.True(during.StatusCode == HttpStatusCode.OK, $"write during failover: {(int)during.StatusCode} {text}");
            Assert.Equal("eu-central", Http.Header(during, "Geo-Region"));
            Assert.Equal("eu-west", Http.Header(during, "Geo-Home-Region"));
            Assert.Equal("true", Http.Header(during, "Geo-Failover"));
        }

        using (var read = await system.Edge.GetAsync(new Uri($"/v1/users/{user}/docs/profile/name", UriKind.Relative), Ct))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("eu-central", Http.Header(read, "Geo-Region"));
            Assert.Equal(2, await ValueAsync(read));
        }

        // Home returns: the edge routes there again, and both regions serve the write made during the failover.
        await system.Api("eu-west").StartAsync(system.Topology.ReadyTimeout, Ct);
        var backHome = await Http.UntilAsync(async () =>
        {
            using var response = await system.Edge.GetAsync(new Uri($"/v1/users/{user}/docs/profile/name", UriKind.Relative), Ct);
            return response.StatusCode == HttpStatusCode.OK && Http.Header(response, "Geo-Region") == "eu-west" && await ValueAsync(response) == 2;
        }, TimeSpan.FromSeconds(30));
        Assert.True(backHome, "the edge did not serve the latest value from eu-west within 30 s of its return");
        Assert.Equal(2, await ReadDirectAsync("eu-west", user));
        Assert.Equal(2, await ReadDirectAsync("eu-central", user));
    }

    [Fact]
    public async Task When_every_allowed_region_is_down_the_edge_answers_503_and_sends_nothing_elsewhere()
    {
        var (user, _) = await Http.CreateUserAsync(system.Edge, "eu");
        Assert.True(await Http.UntilAsync(async () => await ReadUserDirectAsync("eu-central", user), TimeSpan.FromSeconds(30)),
            "eu-central did not learn the user within 30 s");
        var usBefore = await EdgeProbes.ApiRequestCountAsync(system.Api("us-east").BaseAddress);

        await Task.WhenAll(system.Api("eu-west").StopAsync(), system.Api("eu-central").StopAsync());
        foreach (var send in new Func<Task<HttpResponseMessage>>[]
        {
            () => system.Edge.GetAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct),
            () => system.Edge.PutAsync(new Uri($"/v1/users/{user}/docs/notes/x", UriKind.Relative), Http.Json("{}"), Ct),
            () => system.Edge.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{\"residency\":\"eu\"}"), Ct),
        })
        {
            using var response = await send();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("urn:geo:problem:no-allowed-region-healthy", await Http.ProblemTypeAsync(response));
            Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After missing");
            Assert.Null(Http.Header(response, "Geo-Region"));
        }

        // Past the exporter's scrape cache: a misrouted request would be counted by now.
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        Assert.Equal(usBefore, await EdgeProbes.ApiRequestCountAsync(system.Api("us-east").BaseAddress));
    }

    [Fact]
    public async Task A_user_over_its_rate_gets_429_with_retry_after_and_other_users_are_served()
    {
        var (busy, _) = await Http.CreateUserAsync(system.Edge, "us");
        var (quiet, _) = await Http.CreateUserAsync(system.Edge, "us");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 10 && !statuses.Contains(HttpStatusCode.TooManyRequests); i++)
        {
            using var response = await system.LimitedEdge.GetAsync(new Uri($"/v1/users/{busy}", UriKind.Relative), Ct);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.Equal("urn:geo:problem:rate-limited", await Http.ProblemTypeAsync(response));
                Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After missing");
            }
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.True(statuses.Take(3).All(s => s == HttpStatusCode.OK), "the burst of 3 was not served: " + string.Join(", ", statuses));
        using var other = await system.LimitedEdge.GetAsync(new Uri($"/v1/users/{quiet}", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    private const string Documents = "SELECT count(*) FROM documents WHERE user_id = @u";

    /// <summary>The <c>v</c> of the user's profile/name as a region's API serves it (0 when absent): for checks, not for driving.</summary>
    private async Task<int> ReadDirectAsync(string region, string user)
    {
        using var http = TestCredentials.CreateClient(system.Api(region).BaseAddress, TimeSpan.FromSeconds(10));
        using var response = await http.GetAsync(new Uri($"/v1/users/{user}/docs/profile/name", UriKind.Relative), Ct);
        return response.StatusCode == HttpStatusCode.OK ? await ValueAsync(response) : 0;
    }

    private async Task<bool> ReadUserDirectAsync(string region, string user)
    {
        using var http = TestCredentials.CreateClient(system.Api(region).BaseAddress, TimeSpan.FromSeconds(10));
        using var response = await http.GetAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct);
        return response.StatusCode == HttpStatusCode.OK;
    }

    private static async Task<int> ValueAsync(HttpResponseMessage response)
    {
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        return document.RootElement.GetProperty("v").GetInt32();
    }
}
