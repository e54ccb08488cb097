using System.Net;
using Geo.Core.Logging;
using Geo.ServiceDefaults.Auth;
using Geo.Testing.Services;

namespace Geo.Security.Tests.PublicApi;

/// <summary>Rate-limit buckets follow the authenticated principal, never a header; logs name no user, collection or key.</summary>
[Collection(PublicApiCollection.Name)]
public sealed class LimitsAndLogsTests(PublicApiCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_new_X_Client_Id_per_request_does_not_escape_the_principals_bucket()
    {
        var token = TestCredentials.ServiceToken(GeoScopes.All, TestCredentials.AllJurisdictions, subject: "bucket-" + Guid.NewGuid().ToString("N"));
        using var http = TestCredentials.CreateClient(cluster.LimitedEdge.BaseAddress, token: () => token);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"/v1/users/{Guid.CreateVersion7()}", UriKind.Relative));
            request.Headers.Add("X-Client-Id", "client-" + Guid.NewGuid().ToString("N"));
            using var response = await http.SendAsync(request, Ct);
            statuses.Add(response.StatusCode);
        }

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);

        // Another principal has its own bucket.
        var other = TestCredentials.ServiceToken(GeoScopes.All, TestCredentials.AllJurisdictions, subject: "bucket-" + Guid.NewGuid().ToString("N"));
        using var second = TestCredentials.CreateClient(cluster.LimitedEdge.BaseAddress, token: () => other);
        using var fresh = await second.GetAsync(new Uri($"/v1/users/{Guid.CreateVersion7()}", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.NotFound, fresh.StatusCode);
    }

    [Fact]
    public async Task An_untrusted_X_Forwarded_For_does_not_choose_the_anonymous_bucket()
    {
        using var http = TestCredentials.CreateAnonymousClient(cluster.LimitedEdge.BaseAddress);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"/v1/users/{Guid.CreateVersion7()}", UriKind.Relative));
            request.Headers.Add("X-Forwarded-For", $"203.0.113.{i + 1}");
            using var response = await http.SendAsync(request, Ct);
            statuses.Add(response.StatusCode);
        }

        // Unauthenticated calls are 401 until the loopback address's bucket is empty, whatever address they claim.
        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.Unauthorized or HttpStatusCode.TooManyRequests, $"got {s}"));
        Assert.Equal(HttpStatusCode.Unauthorized, statuses[0]);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
    }

    [Fact]
    public async Task Logs_name_no_user_id_collection_or_key_in_any_region_even_when_erasing()
    {
        var user = await cluster.CreateUserAsync("eu");
        var collection = "coll" + Guid.NewGuid().ToString("N")[..12];
        var key = "key" + Guid.NewGuid().ToString("N")[..12];
        await cluster.SeedAsync(user, collection, key);
        using (var http = TestCredentials.CreateClient(cluster.Edge.BaseAddress))
        {
            using var get = await http.GetAsync(new Uri($"/v1/users/{user}/docs/{collection}/{key}", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            using var missing = await http.GetAsync(new Uri($"/v1/users/{user}/docs/{collection}/{key}-absent", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        using (var anonymous = TestCredentials.CreateAnonymousClient(cluster.Edge.BaseAddress))
        {
            using var refused = await anonymous.GetAsync(new Uri($"/v1/users/{user}/docs/{collection}/{key}", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        using (var wrongUser = TestCredentials.CreateClient(cluster.Edge.BaseAddress, token: () => TestCredentials.UserToken(Guid.CreateVersion7().ToString())))
        {
            using var forbidden = await wrongUser.PutAsync(new Uri($"/v1/users/{user}/docs/{collection}/{key}", UriKind.Relative), PublicApiCluster.Json("{}"), Ct);
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        // The erase logs at Information in the API, the shard store and the directory: by the user's keyed hash only.
        using (var eraser = TestCredentials.CreateClient(cluster.Edge.BaseAddress, token: () => TestCredentials.ServiceToken(GeoScopes.All, TestCredentials.AllJurisdictions)))
        {
            using var erased = await eraser.DeleteAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct);
            Assert.Equal(HttpStatusCode.NoContent, erased.StatusCode);
        }

        await Task.Delay(500, Ct); // the processes' stdout is read asynchronously
        var all = cluster.Services.SelectMany(s => s.Logs).ToList();
        Assert.NotEmpty(TestCredentials.UserHashKey); // keys this process's UserLogName as the services' is keyed
        Assert.Contains(all, l => l.Contains(UserLogName.Of(user), StringComparison.Ordinal));
        Assert.DoesNotContain(all, l => l.Contains(collection, StringComparison.Ordinal) || l.Contains(key, StringComparison.Ordinal));
        Assert.DoesNotContain(all, l => l.Contains(user, StringComparison.Ordinal));
    }
}
