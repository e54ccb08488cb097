using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Geo.Testing.Services;

namespace Geo.EdgeRouter.Tests.Cluster;

/// <summary>Routing, placement and failover, driven only through the us-east edge's HTTP API.</summary>
[Collection(EdgeClusterCollection.Name)]
public sealed class EdgeRoutingTests(EdgeCluster cluster) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => new(cluster.RestoreAsync());

    public async ValueTask DisposeAsync()
    {
        await cluster.RestoreAsync();
        var errors = cluster.EdgeErrorLogs.ToList();
        Assert.True(errors.Count == 0, "the edge logged errors:\n" + string.Join('\n', errors.Take(5)));
    }

    [Fact]
    public async Task Eu_user_created_through_the_us_edge_lands_in_the_nearest_eu_region_and_nothing_in_us()
    {
        using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/users") { Content = Http.Json("{\"residency\":\"eu\"}") };
        create.Headers.Add("X-Request-Id", "edge-test-create-1");
        using var created = await cluster.Client.SendAsync(create, Ct);
        var body = await created.Content.ReadAsStringAsync(Ct);
        Assert.True(created.StatusCode == HttpStatusCode.Created, body);
        Assert.Equal("eu-west", Http.Header(created, "Geo-Region"));          // 75 ms from us-east; eu-central is 90
        Assert.Equal("eu-west", Http.Header(created, "Geo-Home-Region"));
        Assert.Equal("us-east", Http.Header(created, "Geo-Edge-Region"));
        Assert.Null(Http.Header(created, "Geo-Failover"));
        Assert.Equal("edge-test-create-1", Http.Header(created, "X-Request-Id"));
        using var json = JsonDocument.Parse(body);
        var userId = json.RootElement.GetProperty("userId").GetString()!;
        Assert.Equal("eu-west", json.RootElement.GetProperty("homeRegion").GetString());

        // A write through the edge: rows in eu-west, none in us-east; the us directory never heard of the user.
        using var put = await cluster.Client.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/hello", UriKind.Relative), Http.Json("{\"text\":\"hi\"}"), Ct);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal("eu-west", Http.Header(put, "Geo-Region"));
        Assert.False(string.IsNullOrEmpty(Http.Header(put, "X-Request-Id")));
        Assert.Equal(1, await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM documents WHERE user_id = @u", userId));
        Assert.Equal(0, await cluster.SumOverShardsAsync("us-east", "SELECT count(*) FROM documents WHERE user_id = @u", userId));
        Assert.False(await Http.DirectoryKnowsAsync(cluster.Directory("us-east").BaseAddress, userId, Ct));

        using var get = await cluster.Client.GetAsync(new Uri($"/v1/users/{userId}/docs/notes/hello", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("{\"text\":\"hi\"}", (await get.Content.ReadAsStringAsync(Ct)).Replace(" ", "", StringComparison.Ordinal));
        Assert.Equal("eu-west", Http.Header(get, "Geo-Region"));
    }

    [Fact]
    public async Task Requests_for_a_user_are_served_by_the_home_region()
    {
        var (userId, created) = await Http.CreateUserAsync(cluster.Client, "eu", homeRegion: "eu-central");
        Assert.Equal("eu-central", Http.Header(created, "Geo-Region"));
        created.Dispose();

        for (var i = 0; i < 5; i++)
        {
            using var put = await cluster.Client.PostAsync(new Uri($"/v1/users/{userId}/counters/visits", UriKind.Relative), Http.Json("{\"delta\":1}"), Ct);
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
            Assert.Equal("eu-central", Http.Header(put, "Geo-Region"));
            Assert.Equal("eu-central", Http.Header(put, "Geo-Home-Region"));
            Assert.Null(Http.Header(put, "Geo-Failover"));
        }

        using var counter = await cluster.Client.GetAsync(new Uri($"/v1/users/{userId}/counters/visits", UriKind.Relative), Ct);
        Assert.Contains("\"value\":5", await counter.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(0, await cluster.SumOverShardsAsync("eu-west", "SELECT count(*) FROM counters WHERE user_id = @u", userId));
    }

    [Fact]
    public async Task What_cannot_be_routed_is_answered_by_the_edge_without_forwarding()
    {
        var before = await TotalApiRequestsAsync();

        using var unknown = await cluster.Client.GetAsync(new Uri($"/v1/users/{Guid.CreateVersion7()}", UriKind.Relative), Ct);
        await Http.ProblemAsync(unknown, HttpStatusCode.NotFound, "user-not-found");
        Assert.Equal("us-east", Http.Header(unknown, "Geo-Edge-Region"));
        Assert.Null(Http.Header(unknown, "Geo-Region"));

        using var garbage = await cluster.Client.GetAsync(new Uri("/v1/users/not%20an%20id/docs/x", UriKind.Relative), Ct);
        await Http.ProblemAsync(garbage, HttpStatusCode.NotFound, "user-not-found");

        using var mars = await cluster.Client.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{\"residency\":\"mars\"}"), Ct);
        await Http.ProblemAsync(mars, HttpStatusCode.BadRequest, "unknown-residency");

        using var noResidency = await cluster.Client.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{}"), Ct);
        await Http.ProblemAsync(noResidency, HttpStatusCode.BadRequest, "invalid-request");

        using var huge = await cluster.Client.PostAsync(new Uri("/v1/users", UriKind.Relative),
            Http.Json("{\"residency\":\"eu\",\"pad\":\"" + new string('x', 64 * 1024) + "\"}"), Ct);
        await Http.ProblemAsync(huge, HttpStatusCode.RequestEntityTooLarge, "body-too-large");

        using var elsewhere = await cluster.Client.GetAsync(new Uri("/v1/other", UriKind.Relative), Ct);
        await Http.ProblemAsync(elsewhere, HttpStatusCode.NotFound, "not-found");

        Assert.Equal(before, await TotalApiRequestsAsync());
    }

    [Fact]
    public async Task When_the_home_region_is_down_the_edge_fails_over_inside_residency_and_comes_back()
    {
        var (userId, created) = await Http.CreateUserAsync(cluster.Client, "eu");
        Assert.Equal("eu-west", Http.Header(created, "Geo-Home-Region"));
        created.Dispose();
        await Http.CopyUserEntryAsync(cluster.Directory("eu-west").BaseAddress, cluster.Directory("eu-central").BaseAddress, userId, Ct);
        var usBefore = await cluster.ApiRequestCountAsync("us-east");

        await cluster.Api("eu-west").StopAsync();
        var seen = await PollAsync(() => cluster.Client.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), Ct),
            r => r.StatusCode == HttpStatusCode.OK && Http.Header(r, "Geo-Failover") == "true", TimeSpan.FromSeconds(30));
        Assert.True(seen[^1].Status == HttpStatusCode.OK && seen[^1].Failover == "true", "no failover within 30 s: " + string.Join(", ", seen));
        Assert.Equal("eu-central", seen[^1].Region);
        Assert.All(seen, s => Assert.True(s.Region is null or "eu-west" or "eu-central", $"served by {s.Region}"));
        Assert.DoesNotContain(seen, s => s.Status == HttpStatusCode.MisdirectedRequest);

        // Active-active: the failover region takes writes too.
        using var write = await cluster.Client.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/during-failover", UriKind.Relative), Http.Json("{\"n\":1}"), Ct);
        Assert.Equal(HttpStatusCode.Created, write.StatusCode);
        Assert.Equal("eu-central", Http.Header(write, "Geo-Region"));
        Assert.Equal("eu-west", Http.Header(write, "Geo-Home-Region"));
        Assert.Equal("true", Http.Header(write, "Geo-Failover"));
        Assert.Equal(1, await cluster.SumOverShardsAsync("eu-central", "SELECT count(*) FROM documents WHERE user_id = @u", userId));

        var metrics = await cluster.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct);
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("geo_edge_routed", StringComparison.Ordinal)
            && l.Contains("failover=\"true\"", StringComparison.Ordinal) && l.Contains("region=\"eu-central\"", StringComparison.Ordinal));

        // The home region returns: active probes put it back and the edge routes home again.
        await cluster.Api("eu-west").StartAsync(TimeSpan.FromSeconds(60), Ct);
        var back = await PollAsync(() => cluster.Client.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), Ct),
            r => r.StatusCode == HttpStatusCode.OK && Http.Header(r, "Geo-Region") == "eu-west", TimeSpan.FromSeconds(30));
        Assert.True(back[^1].Region == "eu-west" && back[^1].Failover is null, "home region not used again within 30 s: " + string.Join(", ", back));
        Assert.Equal(usBefore, await cluster.ApiRequestCountAsync("us-east"));
    }

    [Fact]
    public async Task A_killed_home_api_costs_no_502_the_refused_request_is_sent_to_the_next_region_at_once()
    {
        var (userId, created) = await Http.CreateUserAsync(cluster.Client, "eu");
        Assert.Equal("eu-west", Http.Header(created, "Geo-Home-Region"));
        created.Dispose();
        await Http.CopyUserEntryAsync(cluster.Directory("eu-west").BaseAddress, cluster.Directory("eu-central").BaseAddress, userId, Ct);

        // A pooled connection to eu-west exists: the edge has just served through it.
        using (var warm = await cluster.Client.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), Ct))
        {
            Assert.Equal("eu-west", Http.Header(warm, "Geo-Region"));
        }

        var retriedBefore = await EdgeCounterAsync("geo_edge_retried", "region=\"eu-west\"");
        await cluster.Api("eu-west").StopAsync(); // SIGKILL: the edge learns of it from its next connection attempt

        // First request after the kill, well inside the active probes' 2 s to notice: a write with a body, so the retry
        // must resend the body. It is served by eu-central, not answered 502.
        using (var put = await cluster.Client.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/after-kill", UriKind.Relative), Http.Json("{\"n\":42}"), Ct))
        {
            var text = await put.Content.ReadAsStringAsync(Ct);
            Assert.True(put.StatusCode == HttpStatusCode.Created, $"first write after the kill: {(int)put.StatusCode} {text}");
            Assert.Equal("eu-central", Http.Header(put, "Geo-Region"));
            Assert.Equal("true", Http.Header(put, "Geo-Failover"));
        }

        // 40 requests over about 4 s: past the passive reactivation period (2 s), when eu-west becomes selectable again
        // until a probe fails twice. Not one 502 or other error, nothing outside eu.
        var seen = new List<(HttpStatusCode Status, string? Region)>();
        for (var i = 0; i < 40; i++)
        {
            using var response = await cluster.Client.GetAsync(new Uri($"/v1/users/{userId}/docs/notes/after-kill", UriKind.Relative), Ct);
            seen.Add((response.StatusCode, Http.Header(response, "Geo-Region")));
            await Task.Delay(100, Ct);
        }

        Assert.True(seen.All(s => s.Status == HttpStatusCode.OK && s.Region == "eu-central"), "after the kill: " + string.Join(", ", seen));

        // The refused request was retried (not merely routed elsewhere by a probe that happened to be faster).
        var retried = retriedBefore;
        for (var attempt = 0; attempt < 30 && retried <= retriedBefore; attempt++)
        {
            await Task.Delay(100, Ct);
            retried = await EdgeCounterAsync("geo_edge_retried", "region=\"eu-west\"");
        }

        Assert.True(retried > retriedBefore, $"geo_edge_retried{{region=eu-west}} did not move ({retriedBefore} → {retried})");
        Assert.Equal(1, await cluster.SumOverShardsAsync("eu-central", "SELECT count(*) FROM documents WHERE user_id = @u AND key = 'after-kill'", userId));
    }

    [Fact]
    public async Task When_every_allowed_region_is_down_the_edge_answers_503_and_never_misroutes()
    {
        var (userId, created) = await Http.CreateUserAsync(cluster.Client, "eu");
        created.Dispose();
        await Http.CopyUserEntryAsync(cluster.Directory("eu-west").BaseAddress, cluster.Directory("eu-central").BaseAddress, userId, Ct);

        // The us-east counter is live: a us request through the edge moves it.
        var usStart = await cluster.ApiRequestCountAsync("us-east");
        var (_, usCreated) = await Http.CreateUserAsync(cluster.Client, "us");
        Assert.Equal("us-east", Http.Header(usCreated, "Geo-Region"));
        usCreated.Dispose();
        // The server records a request after the client has its response, and the exporter caches a scrape briefly:
        // read until the count settles (bounded).
        var usBefore = await cluster.ApiRequestCountAsync("us-east");
        for (var attempt = 0; attempt < 50 && usBefore <= usStart; attempt++)
        {
            await Task.Delay(100, Ct);
            usBefore = await cluster.ApiRequestCountAsync("us-east");
        }

        Assert.True(usBefore > usStart, $"us-east request count did not move ({usStart} → {usBefore})");

        await Task.WhenAll(cluster.Api("eu-west").StopAsync(), cluster.Api("eu-central").StopAsync());
        var seen = await PollAsync(() => cluster.Client.GetAsync(new Uri($"/v1/users/{userId}/docs/notes/x", UriKind.Relative), Ct),
            r => r.StatusCode == HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, seen[^1].Status);

        var requests = new Func<Task<HttpResponseMessage>>[]
        {
            () => cluster.Client.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), Ct),
            () => cluster.Client.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/y", UriKind.Relative), Http.Json("{}"), Ct),
            () => cluster.Client.PostAsync(new Uri($"/v1/users/{userId}/counters/c", UriKind.Relative), Http.Json("{\"delta\":1}"), Ct),
            () => cluster.Client.PostAsync(new Uri("/v1/users", UriKind.Relative), Http.Json("{\"residency\":\"eu\"}"), Ct),
        };
        foreach (var send in requests)
        {
            using var response = await send();
            await Http.ProblemAsync(response, HttpStatusCode.ServiceUnavailable, "no-allowed-region-healthy");
            Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After missing");
            Assert.Null(Http.Header(response, "Geo-Region"));
        }

        // Past the exporter's scrape cache, so a misrouted request would have been counted by now.
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        Assert.Equal(usBefore, await cluster.ApiRequestCountAsync("us-east"));
        var metrics = await cluster.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct);
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("geo_edge_rejected", StringComparison.Ordinal) && l.Contains("reason=\"no-allowed-region-healthy\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_miss_while_a_peer_directory_does_not_answer_is_503_with_retry_after_never_404()
    {
        // The user exists in eu-west's directory only (the region that created it; nothing replicates directories in this
        // cluster) and the edge has never looked it up, so nothing of it is cached at the edge.
        var (userId, created) = await Http.CreateUserAsync(cluster.Client, "eu");
        Assert.Equal("eu-west", Http.Header(created, "Geo-Home-Region"));
        created.Dispose();

        await cluster.Directory("eu-west").StopAsync();
        // us-east's directory and eu-central's say "not found", eu-west's does not answer: the edge cannot know.
        using (var unknown = await cluster.Client.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), Ct))
        {
            await Http.ProblemAsync(unknown, HttpStatusCode.ServiceUnavailable, "dependency-unavailable");
            Assert.True(unknown.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After missing");
        }

        // Once it answers again, the retry the 503 asked for finds the user.
        await cluster.Directory("eu-west").StartAsync(TimeSpan.FromSeconds(60), Ct);
        var seen = await PollAsync(() => cluster.Client.GetAsync(new Uri($"/v1/users/{userId}", UriKind.Relative), Ct),
            r => r.StatusCode != HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(30));
        Assert.True(seen[^1].Status == HttpStatusCode.OK && seen[^1].Region == "eu-west", "after the directory returned: " + string.Join(", ", seen));
        Assert.DoesNotContain(seen, s => s.Status == HttpStatusCode.NotFound);

        // And the region takes new users again (its API writes them to the restarted directory).
        await EdgeProbes.WaitUntilRoutedHomeAsync(cluster.Client, ["eu-west"], TimeSpan.FromSeconds(30));
    }

    private Task<long> EdgeCounterAsync(string name, string label) => EdgeProbes.CounterAsync(cluster.Client, name, label);

    private async Task<long> TotalApiRequestsAsync()
    {
        long total = 0;
        foreach (var region in EdgeCluster.RegionIds)
        {
            total += await cluster.ApiRequestCountAsync(region);
        }

        return total;
    }

    /// <summary>Sends until <paramref name="done"/> holds, at most 300 times and for at most <paramref name="limit"/>.</summary>
    private static async Task<List<Observation>> PollAsync(Func<Task<HttpResponseMessage>> send, Func<HttpResponseMessage, bool> done, TimeSpan limit)
    {
        var seen = new List<Observation>();
        var clock = Stopwatch.StartNew();
        for (var attempt = 0; attempt < 300 && clock.Elapsed < limit; attempt++)
        {
            using var response = await send();
            seen.Add(new Observation(response.StatusCode, Http.Header(response, "Geo-Region"), Http.Header(response, "Geo-Failover")));
            if (done(response))
            {
                break;
            }

            await Task.Delay(100, Ct);
        }

        return seen;
    }

    private sealed record Observation(HttpStatusCode Status, string? Region, string? Failover);
}
