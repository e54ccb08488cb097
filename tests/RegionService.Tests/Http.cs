using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Geo.RegionService.Tests;

internal static class Http
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static async Task<string> CreateUserAsync(HttpClient client, string residency = "eu", string? homeRegion = null)
    {
        var body = homeRegion is null ? $"{{\"residency\":\"{residency}\"}}" : $"{{\"residency\":\"{residency}\",\"homeRegion\":\"{homeRegion}\"}}";
        using var response = await client.PostAsync(new Uri("/v1/users", UriKind.Relative), Json(body));
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create user: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.GetProperty("userId").GetString()!;
    }

    public static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode status, string type)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(text);
        Assert.Equal("urn:geo:problem:" + type, document.RootElement.GetProperty("type").GetString());
        Assert.Equal((int)status, document.RootElement.GetProperty("status").GetInt32());
        return document.RootElement.Clone();
    }

    public static HttpRequestMessage Request(HttpMethod method, string path, string? json = null, string? idempotencyKey = null, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        if (json is not null)
        {
            request.Content = Json(json);
        }

        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        return request;
    }

    public static string? ETag(HttpResponseMessage response) => response.Headers.ETag?.ToString() ?? (response.Headers.TryGetValues("ETag", out var v) ? v.First() : null);

    public static MediaTypeHeaderValue JsonType => new("application/json");
}
