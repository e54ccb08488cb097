using System.Net;
using System.Net.Http.Headers;
using Geo.Testing.Services;

namespace Geo.EdgeRouter.Tests.Cluster;

/// <summary>The edge with tight limits: 5 requests of burst per client (token subject), 3 per user, 1 per second after that.</summary>
[Collection(EdgeClusterCollection.Name)]
public sealed class RateLimitTests(EdgeCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // What the edge answers for a random id within the limits: 404, or 503 when a directory did not answer the lookup in
    // time (a cold connection on a busy machine) — it cannot tell a missing user from one it could not ask about.
    private static readonly HttpStatusCode[] NotLimited = [HttpStatusCode.NotFound, HttpStatusCode.ServiceUnavailable];

    [Fact]
    public async Task A_client_over_its_rate_gets_429_with_retry_after_and_other_clients_do_not()
    {
        var client = "client-" + Guid.NewGuid().ToString("N");
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 12 && limited is null; i++)
        {
            var response = await SendAsync(client, Guid.CreateVersion7().ToString());
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited = response;
            }
            else
            {
                response.Dispose();
            }
        }

        Assert.NotNull(limited);
        using (limited)
        {
            Assert.All(statuses.Take(5), s => Assert.Contains(s, NotLimited));
            var problem = await Http.ProblemAsync(limited, HttpStatusCode.TooManyRequests, "rate-limited");
            Assert.Contains("client", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
            Assert.True(limited.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), "Retry-After missing");
            Assert.Equal("us-east", Http.Header(limited, "Geo-Edge-Region"));
        }

        using var other = await SendAsync("client-" + Guid.NewGuid().ToString("N"), Guid.CreateVersion7().ToString());
        Assert.Contains(other.StatusCode, NotLimited);
    }

    [Fact]
    public async Task Requests_to_one_user_over_its_rate_get_429_whatever_the_client()
    {
        var userId = Guid.CreateVersion7().ToString();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var response = await SendAsync("client-" + Guid.NewGuid().ToString("N"), userId);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                var problem = await Http.ProblemAsync(response, HttpStatusCode.TooManyRequests, "rate-limited");
                Assert.Contains("user", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
                Assert.NotNull(response.Headers.RetryAfter);
                break;
            }
        }

        Assert.All(statuses.Take(3), s => Assert.Contains(s, NotLimited));
        Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);

        // Health and metrics are never limited.
        for (var i = 0; i < 10; i++)
        {
            using var ready = await cluster.LimitedClient.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
    }

    // A client is a principal: its token's subject chooses its bucket (no header does).
    private Task<HttpResponseMessage> SendAsync(string clientId, string userId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"/v1/users/{userId}", UriKind.Relative));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestCredentials.ServiceToken(subject: clientId));
        return cluster.LimitedClient.SendAsync(request, Ct);
    }
}
