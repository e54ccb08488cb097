using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Geo.Core.Tls;
using Geo.Testing.Security;
using Geo.Testing.Services;

namespace Geo.Security.Tests.Internal;

/// <summary>
/// A region's API answers only the edge (or the admin) over mutual TLS; health stays anonymous. The edge's public
/// port serves HTTPS with a certificate of the deployment's CA and asks no client certificate.
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class ApiAccessTests(MeshCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_api_without_a_client_certificate_answers_401_problem_json_and_creates_nothing()
    {
        var before = await cluster.SnapshotAsync();
        using var http = new HttpClient(TestPki.AnonymousHandler()) { BaseAddress = cluster.EuApi.BaseAddress };
        using var response = await http.PostAsJsonAsync(new Uri("/v1/users", UriKind.Relative), new { residency = "eu" }, Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal("urn:geo:problem:client-certificate-required", problem.RootElement.GetProperty("type").GetString());
        Assert.Equal(before, await cluster.SnapshotAsync());
    }

    [Theory]
    [InlineData("eu-west/replicator")]
    [InlineData("eu-west/directory")]
    [InlineData("eu-west/api")]
    public async Task The_api_refuses_a_certificate_of_another_role_with_403(string caller)
    {
        var before = await cluster.SnapshotAsync();
        using var http = TestCredentials.CreateClient(cluster.EuApi.BaseAddress, TimeSpan.FromSeconds(30), certificate: Refusals.Caller(caller));
        using var response = await http.PostAsJsonAsync(new Uri("/v1/users", UriKind.Relative), new { residency = "eu" }, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal("urn:geo:problem:peer-role-forbidden", problem.RootElement.GetProperty("type").GetString());
        Assert.Equal(before, await cluster.SnapshotAsync());
    }

    [Fact]
    public async Task The_api_refuses_at_the_handshake_a_certificate_of_another_ca()
    {
        var before = await cluster.SnapshotAsync();
        using var http = TestCredentials.CreateClient(cluster.EuApi.BaseAddress, TimeSpan.FromSeconds(30), certificate: MeshCluster.Foreign(new PeerIdentity("us-east", PeerRoles.Edge)));
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => http.PostAsJsonAsync(new Uri("/v1/users", UriKind.Relative), new { residency = "eu" }, Ct));
        Assert.True(Refusals.IsHandshakeRefusal(error), error.ToString());
        Assert.Equal(before, await cluster.SnapshotAsync());
    }

    [Fact]
    public async Task Reading_a_user_s_document_without_a_client_certificate_is_refused()
    {
        var userId = await cluster.CreateEuUserAsync();
        using (var edge = TestCredentials.CreateClient(cluster.EuApi.BaseAddress, TimeSpan.FromSeconds(30), certificate: TestPki.For("us-east", PeerRoles.Edge)))
        {
            using var put = await edge.PutAsync(new Uri($"/v1/users/{userId}/docs/notes/n1", UriKind.Relative), JsonContent.Create(new { secret = 1 }), Ct);
            Assert.True(put.IsSuccessStatusCode, $"{(int)put.StatusCode}");
        }

        using var anonymous = new HttpClient(TestPki.AnonymousHandler()) { BaseAddress = cluster.EuApi.BaseAddress };
        using var response = await anonymous.GetAsync(new Uri($"/v1/users/{userId}/docs/notes/n1", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.DoesNotContain("secret", await response.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_is_anonymous_and_metrics_are_not()
    {
        using var anonymous = new HttpClient(TestPki.AnonymousHandler()) { BaseAddress = cluster.EuApi.BaseAddress };
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("/metrics", UriKind.Relative), Ct)).StatusCode);
        using var replicatorMetrics = new HttpClient(TestPki.AnonymousHandler()) { BaseAddress = cluster.EuReplicator.BaseAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await replicatorMetrics.GetAsync(new Uri("/metrics", UriKind.Relative), Ct)).StatusCode);
        using var admin = TestCredentials.CreateClient(cluster.EuReplicator.BaseAddress, TimeSpan.FromSeconds(10), certificate: TestPki.For(PeerIdentity.Admin));
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(new Uri("/metrics", UriKind.Relative), Ct)).StatusCode);
    }

    [Fact]
    public async Task The_edge_serves_https_with_a_certificate_of_the_deployment_and_asks_no_client_certificate()
    {
        using var anonymous = new HttpClient(TestPki.AnonymousHandler()) { BaseAddress = cluster.UsEdge.BaseAddress };
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct)).StatusCode);

        // No cleartext on the public port.
        using var cleartext = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{cluster.UsEdge.Port}"), Timeout = TimeSpan.FromSeconds(10) };
        using var plain = await SendOrNullAsync(cleartext);
        Assert.True(plain is null || plain.StatusCode == HttpStatusCode.BadRequest, $"cleartext answered {(int?)plain?.StatusCode}");
    }

    private static async Task<HttpResponseMessage?> SendOrNullAsync(HttpClient client)
    {
        try
        {
            return await client.GetAsync(new Uri("/healthz/ready", UriKind.Relative), Ct);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }
}
