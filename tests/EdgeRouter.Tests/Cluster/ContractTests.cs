using System.Net;
using System.Text.Json;

namespace Geo.EdgeRouter.Tests.Cluster;

/// <summary>The OpenAPI document, served through the edge, describes what the API answers.</summary>
[Collection(EdgeClusterCollection.Name)]
public sealed class ContractTests(EdgeCluster cluster)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_document_is_served_through_the_edge_with_schemas_problem_types_and_headers()
    {
        using var response = await cluster.Client.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;
        Assert.StartsWith("3.1", root.GetProperty("openapi").GetString(), StringComparison.Ordinal);

        var paths = root.GetProperty("paths");
        var put = paths.GetProperty("/v1/users/{userId}/docs/{collection}/{key}").GetProperty("put");
        Assert.Equal("putDocument", put.GetProperty("operationId").GetString());
        var parameters = put.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString()).ToList();
        Assert.Contains("If-Match", parameters);
        Assert.Contains("If-None-Match", parameters);
        Assert.Contains("Idempotency-Key", parameters);
        var responses = put.GetProperty("responses");
        foreach (var status in new[] { "200", "201", "400", "404", "412", "413", "415", "421", "422", "503" })
        {
            Assert.True(responses.TryGetProperty(status, out _), $"putDocument lacks {status}");
        }

        Assert.True(responses.GetProperty("201").GetProperty("headers").TryGetProperty("ETag", out _));
        Assert.Contains("urn:geo:problem:precondition-failed", responses.GetProperty("412").GetProperty("x-geo-problem-types").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains("urn:geo:problem:invalid-string", responses.GetProperty("400").GetProperty("x-geo-problem-types").EnumerateArray().Select(t => t.GetString()));

        var list = paths.GetProperty("/v1/users/{userId}/docs/{collection}").GetProperty("get");
        var limit = list.GetProperty("parameters").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "limit");
        Assert.Equal("integer", limit.GetProperty("schema").GetProperty("type").GetString());

        var counter = paths.GetProperty("/v1/users/{userId}/counters/{name}").GetProperty("post");
        Assert.Contains("urn:geo:problem:counter-overflow", counter.GetProperty("responses").GetProperty("422").GetProperty("x-geo-problem-types").EnumerateArray().Select(t => t.GetString()));
        Assert.True(counter.GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
        Assert.True(root.GetProperty("components").GetProperty("schemas").TryGetProperty("UserView", out _));

        // Bearer JWT: the scheme, and the scope each operation needs; refusals are documented statuses.
        var bearer = root.GetProperty("components").GetProperty("securitySchemes").GetProperty("bearer");
        Assert.Equal(("http", "bearer", "JWT"), (bearer.GetProperty("type").GetString(), bearer.GetProperty("scheme").GetString(), bearer.GetProperty("bearerFormat").GetString()));
        Assert.Equal("geo.write", put.GetProperty("security")[0].GetProperty("bearer")[0].GetString());
        Assert.Equal("geo.users.create", paths.GetProperty("/v1/users").GetProperty("post").GetProperty("security")[0].GetProperty("bearer")[0].GetString());
        Assert.Contains("urn:geo:problem:unauthenticated", responses.GetProperty("401").GetProperty("x-geo-problem-types").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains("urn:geo:problem:insufficient-scope", responses.GetProperty("403").GetProperty("x-geo-problem-types").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task The_rendered_reference_is_served_through_the_edge()
    {
        using var response = await cluster.Client.GetAsync(new Uri("/scalar/v1", UriKind.Relative), Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
    }
}
