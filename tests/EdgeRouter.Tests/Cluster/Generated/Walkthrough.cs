using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Geo.Generated;

/// <summary>
/// The walk-through of issue 12 written against the client NSwag generates from the served document (GeoApi and its
/// models, in this namespace); GeneratedClientTests compiles the two together at run time. It uses nothing of Geo's
/// own code: only the generated client and the HttpClient it is given (the harness's, which adds the bearer token).
/// </summary>
public static class Walkthrough
{
    public static async Task<IReadOnlyList<string>> RunAsync(HttpClient http, CancellationToken ct)
    {
        var steps = new List<string>();
        var api = new GeoApi(http);

        var created = await api.CreateUserAsync(Guid.NewGuid().ToString(), new CreateUserRequest { Residency = "eu" }, ct);
        Assert.Equal(201, created.StatusCode);
        var userId = created.Result.UserId;
        Assert.Equal(("eu", "eu-west"), (created.Result.Residency, created.Result.HomeRegion));
        Assert.Contains("eu-central", created.Result.Regions);
        steps.Add("create");

        // Create-only (If-None-Match: *), under an Idempotency-Key: 201, and the ETag is the body's version quoted.
        var put = await api.PutDocumentAsync(userId, "notes", "a/1", Guid.NewGuid().ToString(), null, "*", new Note("hello"), ct);
        Assert.Equal(201, put.StatusCode);
        var etag = Header(put, "ETag");
        Assert.Equal($"\"{put.Result.Version}\"", etag);
        Assert.Equal(("notes", "a/1"), (put.Result.Collection, put.Result.Key));
        steps.Add("put");

        var got = await api.GetDocumentAsync(userId, "notes", "a/1", ct);
        Assert.Equal(200, got.StatusCode);
        Assert.Equal(etag, Header(got, "ETag"));
        Assert.Equal("hello", Json(got.Result).GetProperty("text").GetString());
        steps.Add("get");

        var replaced = await api.PutDocumentAsync(userId, "notes", "a/1", null, etag, null, new Note("again"), ct);
        Assert.Equal(200, replaced.StatusCode);
        Assert.NotEqual(etag, Header(replaced, "ETag"));
        steps.Add("put-if-match");

        var stale = await Assert.ThrowsAsync<ApiException<ProblemDetails>>(
            () => api.PutDocumentAsync(userId, "notes", "a/1", null, etag, null, new Note("lost"), ct));
        Assert.Equal(412, stale.StatusCode);
        Assert.Equal("urn:geo:problem:precondition-failed", stale.Result.Type);
        steps.Add("412");

        // A body is any JSON value, not only an object; a page holds at most `limit` items and `next` leads on.
        object[] values = [new[] { 1, 2 }, "text", 42, true];
        for (var i = 0; i < values.Length; i++)
        {
            Assert.Equal(201, (await api.PutDocumentAsync(userId, "notes", $"b{i}", null, null, null, values[i], ct)).StatusCode);
        }

        var listed = new List<string>();
        string? after = null;
        for (var page = 0; page < 10; page++)
        {
            var response = await api.ListDocumentsAsync(userId, "notes", 2, after!, ct);
            Assert.InRange(response.Result.Items.Count, 1, 2);
            foreach (var item in response.Result.Items)
            {
                Assert.False(string.IsNullOrEmpty(item.Version));
                listed.Add($"{item.Key}={Json(item.Body).GetRawText()}");
            }

            after = response.Result.Next;
            if (after is null)
            {
                break;
            }
        }

        Assert.Equal(["a/1={\"text\":\"again\"}", "b0=[1,2]", "b1=\"text\"", "b2=42", "b3=true"], listed);
        steps.Add("list");

        Assert.Equal(5, (await api.IncrementCounterAsync(userId, "visits", Guid.NewGuid().ToString(), new CounterIncrement { Delta = 5 }, ct)).Result.Value);
        Assert.Equal(3, (await api.IncrementCounterAsync(userId, "visits", null, new CounterIncrement { Delta = -2 }, ct)).Result.Value);
        Assert.Equal(3, (await api.GetCounterAsync(userId, "visits", ct)).Result.Value);
        Assert.Equal(0, (await api.GetCounterAsync(userId, "never", ct)).Result.Value);
        steps.Add("counter");

        var deleted = await api.DeleteDocumentAsync(userId, "notes", "a/1", null, Header(replaced, "ETag"), null, ct);
        Assert.Equal(204, deleted.StatusCode);
        steps.Add("delete");

        var gone = await Assert.ThrowsAsync<ApiException<ProblemDetails>>(() => api.GetDocumentAsync(userId, "notes", "a/1", ct));
        Assert.Equal(404, gone.StatusCode);
        Assert.Equal("urn:geo:problem:document-not-found", gone.Result.Type);
        steps.Add("gone");
        return steps;
    }

    private static string Header(SwaggerResponse response, string name)
        => Assert.Single(response.Headers.Where(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).SelectMany(h => h.Value));

    // "Any JSON value" is `object` in the generated client; System.Text.Json reads it as a JsonElement.
    private static JsonElement Json(object value) => Assert.IsType<JsonElement>(value);

    private sealed record Note(string Text)
    {
        [System.Text.Json.Serialization.JsonPropertyName("text")]
        public string Text { get; init; } = Text;
    }
}
