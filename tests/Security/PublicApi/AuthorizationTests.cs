using System.Net;
using System.Text.Json;
using Geo.ServiceDefaults.Auth;
using Geo.Testing.Services;

namespace Geo.Security.Tests.PublicApi;

/// <summary>
/// Valid tokens without the right, at the edge and at the user's regional API directly: 403 problem+json with a stable
/// type, and no store changes. A user token on another user's id is 403 whether or not that id exists.
/// </summary>
[Collection(PublicApiCollection.Name)]
public sealed class AuthorizationTests(PublicApiCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] Targets = ["edge", "eu-west"];

    /// <summary>Operations on one user: method, path under <c>/v1/users/{id}</c>, body.</summary>
    private static readonly (string Name, string Method, string Path, string? Body)[] UserOperations =
    [
        ("get-user", "GET", "", null),
        ("get-document", "GET", "/docs/notes/n1", null),
        ("put-document", "PUT", "/docs/notes/n1", "{\"secret\":2}"),
        ("delete-document", "DELETE", "/docs/notes/n1", null),
        ("list-documents", "GET", "/docs/notes", null),
        ("increment-counter", "POST", "/counters/visits", "{\"delta\":5}"),
        ("get-counter", "GET", "/counters/visits", null),
        ("erase-user", "DELETE", "", null),
    ];

    public static TheoryData<string, string> TargetsAndOperations()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in Targets)
        {
            foreach (var operation in UserOperations)
            {
                data.Add(target, operation.Name);
            }
        }

        return data;
    }

    public static TheoryData<string> AllTargets() => new(Targets);

    [Theory]
    [MemberData(nameof(TargetsAndOperations))]
    public async Task A_user_token_on_another_user_is_403_and_changes_nothing(string target, string operation)
    {
        var victim = await cluster.CreateUserAsync("eu");
        var attacker = await cluster.CreateUserAsync("eu");
        await cluster.SeedAsync(victim, "notes", "n1");
        await AssertRefusedAsync(target, operation, victim, TestCredentials.UserToken(attacker), "other-user");
    }

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task A_user_token_on_an_id_that_does_not_exist_is_403_like_one_that_does(string target)
    {
        var attacker = await cluster.CreateUserAsync("eu");
        await AssertRefusedAsync(target, "get-user", Guid.CreateVersion7().ToString(), TestCredentials.UserToken(attacker), "other-user");
    }

    [Theory]
    [MemberData(nameof(TargetsAndOperations))]
    public async Task A_us_only_service_token_on_an_eu_user_is_403_and_changes_nothing(string target, string operation)
    {
        var victim = await cluster.CreateUserAsync("eu");
        await cluster.SeedAsync(victim, "notes", "n1");
        var usOnly = TestCredentials.ServiceToken(GeoScopes.All, ["us"]);
        await AssertRefusedAsync(target, operation, victim, usOnly, "jurisdiction-not-allowed");
    }

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task A_us_only_service_token_cannot_create_an_eu_user(string target)
    {
        var usOnly = TestCredentials.ServiceToken(GeoScopes.All, ["us"]);
        await AssertCreateRefusedAsync(target, usOnly, "jurisdiction-not-allowed");
    }

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task Creating_a_user_needs_geo_users_create(string target)
    {
        var token = TestCredentials.ServiceToken([GeoScopes.Read, GeoScopes.Write, GeoScopes.Erase], TestCredentials.AllJurisdictions);
        var response = await AssertCreateRefusedAsync(target, token, "insufficient-scope");
        Assert.Contains("scope=\"geo.users.create\"", response, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task A_user_token_cannot_create_users(string target)
        => await AssertCreateRefusedAsync(target, TestCredentials.UserToken(await cluster.CreateUserAsync("eu")), "user-token-not-allowed");

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task Erasing_needs_geo_erase_even_with_read_write_and_create(string target)
    {
        var victim = await cluster.CreateUserAsync("eu");
        await cluster.SeedAsync(victim, "notes", "n1");
        var token = TestCredentials.ServiceToken([GeoScopes.Read, GeoScopes.Write, GeoScopes.UsersCreate], TestCredentials.AllJurisdictions);
        await AssertRefusedAsync(target, "erase-user", victim, token, "insufficient-scope");
    }

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task A_user_token_cannot_erase_its_own_user_without_geo_erase(string target)
    {
        var user = await cluster.CreateUserAsync("eu");
        await cluster.SeedAsync(user, "notes", "n1");
        await AssertRefusedAsync(target, "erase-user", user, TestCredentials.UserToken(user), "insufficient-scope");
    }

    [Theory]
    [MemberData(nameof(AllTargets))]
    public async Task A_read_only_service_token_cannot_write(string target)
    {
        var victim = await cluster.CreateUserAsync("eu");
        await cluster.SeedAsync(victim, "notes", "n1");
        var readOnly = TestCredentials.ServiceToken([GeoScopes.Read], TestCredentials.AllJurisdictions);
        await AssertRefusedAsync(target, "put-document", victim, readOnly, "insufficient-scope");
        await AssertRefusedAsync(target, "increment-counter", victim, readOnly, "insufficient-scope");
    }

    private async Task AssertRefusedAsync(string target, string operation, string userId, string token, string slug)
    {
        var op = UserOperations.Single(o => o.Name == operation);
        var before = await cluster.FingerprintAsync();
        using var http = TestCredentials.CreateAnonymousClient(cluster.Target(target));
        using var response = await http.SendAsync(
            PublicApiCluster.Request(new HttpMethod(op.Method), $"/v1/users/{userId}{op.Path}", token, op.Body), Ct);
        await AssertForbiddenAsync(response, slug, $"{operation} at {target}");
        Assert.Equal(before, await cluster.FingerprintAsync());
    }

    private async Task<string> AssertCreateRefusedAsync(string target, string token, string slug)
    {
        var before = await cluster.FingerprintAsync();
        using var http = TestCredentials.CreateAnonymousClient(cluster.Target(target));
        using var response = await http.SendAsync(PublicApiCluster.Request(HttpMethod.Post, "/v1/users", token, "{\"residency\":\"eu\"}"), Ct);
        await AssertForbiddenAsync(response, slug, $"create at {target}");
        Assert.Equal(before, await cluster.FingerprintAsync());
        return string.Join(",", response.Headers.WwwAuthenticate.Select(h => h.ToString()));
    }

    internal static async Task AssertForbiddenAsync(HttpResponseMessage response, string slug, string what)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{what}: expected 403, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("urn:geo:problem:" + slug, JsonDocument.Parse(text).RootElement.GetProperty("type").GetString());
        Assert.DoesNotContain("secret", text, StringComparison.Ordinal);
    }
}
