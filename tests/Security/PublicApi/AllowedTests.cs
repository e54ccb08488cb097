using System.Net;
using System.Text.Json;
using Geo.ServiceDefaults.Auth;
using Geo.Testing.Services;

namespace Geo.Security.Tests.PublicApi;

/// <summary>The positive paths: the right token does what it may, and the anonymous endpoints stay anonymous.</summary>
[Collection(PublicApiCollection.Name)]
public sealed class AllowedTests(PublicApiCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> AllTargets() => new("edge", "eu-west");

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task A_user_token_reads_and_writes_its_own_user(string target)
    {
        var user = await cluster.CreateUserAsync("eu");
        using var http = TestCredentials.CreateClient(cluster.Target(target), token: () => TestCredentials.UserToken(user));
        using var put = await http.PutAsync(new Uri($"/v1/users/{user}/docs/notes/mine", UriKind.Relative), PublicApiCluster.Json("{\"v\":1}"), Ct);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        using var get = await http.GetAsync(new Uri($"/v1/users/{user}/docs/notes/mine", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(1, JsonDocument.Parse(await get.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("v").GetInt32());
        using var list = await http.GetAsync(new Uri($"/v1/users/{user}/docs/notes", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        using var counter = await http.PostAsync(new Uri($"/v1/users/{user}/counters/c", UriKind.Relative), PublicApiCluster.Json("{\"delta\":2}"), Ct);
        Assert.Equal(HttpStatusCode.OK, counter.StatusCode);
        using var profile = await http.GetAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, profile.StatusCode);
    }

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task An_eu_service_token_with_geo_erase_creates_and_erases_an_eu_user(string target)
    {
        var token = TestCredentials.ServiceToken([GeoScopes.UsersCreate, GeoScopes.Erase, GeoScopes.Read], ["eu"]);
        using var http = TestCredentials.CreateClient(cluster.Target(target), token: () => token);
        using var create = await http.PostAsync(new Uri("/v1/users", UriKind.Relative), PublicApiCluster.Json("{\"residency\":\"eu\",\"homeRegion\":\"eu-west\"}"), Ct);
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        var user = JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("userId").GetString();
        using var erase = await http.DeleteAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.NoContent, erase.StatusCode);
        using var gone = await http.GetAsync(new Uri($"/v1/users/{user}", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task A_us_service_token_serves_us_users_through_the_edge()
    {
        var token = TestCredentials.ServiceToken([GeoScopes.UsersCreate, GeoScopes.Read, GeoScopes.Write], ["us"]);
        using var http = TestCredentials.CreateClient(cluster.Edge.BaseAddress, token: () => token);
        using var create = await http.PostAsync(new Uri("/v1/users", UriKind.Relative), PublicApiCluster.Json("{\"residency\":\"us\"}"), Ct);
        Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        var user = JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("userId").GetString();
        using var put = await http.PutAsync(new Uri($"/v1/users/{user}/docs/a/b", UriKind.Relative), PublicApiCluster.Json("{}"), Ct);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
    }

    [Theory]
    [InlineData("edge", "/healthz/live")]
    [InlineData("edge", "/healthz/ready")]
    [InlineData("edge", "/metrics")]
    [InlineData("eu-west", "/healthz/ready")]
    [InlineData("eu-west", "/metrics")]
    [InlineData("eu-west", "/openapi/v1.json")]
    public async Task Health_metrics_and_openapi_need_no_token(string target, string path)
    {
        using var http = TestCredentials.CreateAnonymousClient(cluster.Target(target));
        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
