using System.Net;
using System.Text.Json;

namespace Geo.Security.Tests.PublicApi;

/// <summary>
/// Tokens that must not authenticate, at the edge and at a regional API directly (each validates on its own): every
/// one is answered 401 problem+json with <c>WWW-Authenticate: Bearer</c>, and no store changes.
/// </summary>
[Collection(PublicApiCollection.Name)]
public sealed class AuthenticationTests(PublicApiCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var target in new[] { "edge", "eu-west" })
        {
            foreach (var token in HostileTokens.Names)
            {
                data.Add(target, token);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_write_with_a_bad_token_is_401_and_changes_nothing(string target, string token)
    {
        var victim = await cluster.CreateUserAsync("eu");
        await cluster.SeedAsync(victim, "notes", "n1");
        var before = await cluster.FingerprintAsync();
        using var http = Testing.Services.TestCredentials.CreateAnonymousClient(cluster.Target(target));
        var hostile = HostileTokens.Create(token);

        using var put = await http.SendAsync(PublicApiCluster.Request(HttpMethod.Put, $"/v1/users/{victim}/docs/notes/n1", hostile, "{\"secret\":2}"), Ct);
        await AssertUnauthorizedAsync(put, token);
        using var erase = await http.SendAsync(PublicApiCluster.Request(HttpMethod.Delete, $"/v1/users/{victim}", hostile), Ct);
        await AssertUnauthorizedAsync(erase, token);
        using var create = await http.SendAsync(PublicApiCluster.Request(HttpMethod.Post, "/v1/users", hostile, "{\"residency\":\"eu\"}"), Ct);
        await AssertUnauthorizedAsync(create, token);
        using var get = await http.SendAsync(PublicApiCluster.Request(HttpMethod.Get, $"/v1/users/{victim}/docs/notes/n1", hostile), Ct);
        await AssertUnauthorizedAsync(get, token);

        Assert.Equal(before, await cluster.FingerprintAsync());
    }

    private static async Task AssertUnauthorizedAsync(HttpResponseMessage response, string token)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{token}: expected 401, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate);
        Assert.Equal("Bearer", challenge.Scheme);
        var type = JsonDocument.Parse(text).RootElement.GetProperty("type").GetString();
        Assert.Equal(token == "missing" ? "urn:geo:problem:unauthenticated" : "urn:geo:problem:invalid-token", type);
        Assert.DoesNotContain("secret", text, StringComparison.Ordinal);
    }
}
