using System.Net;
using System.Text;
using System.Text.Json;

namespace Geo.EndToEnd;

internal static class Http
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static string? Header(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;

    /// <summary>Creates a user through an edge; returns its id and home region.</summary>
    public static async Task<(string UserId, string Home)> CreateUserAsync(HttpClient edge, string residency, string? homeRegion = null)
    {
        var body = homeRegion is null ? $"{{\"residency\":\"{residency}\"}}" : $"{{\"residency\":\"{residency}\",\"homeRegion\":\"{homeRegion}\"}}";
        using var response = await edge.PostAsync(new Uri("/v1/users", UriKind.Relative), Json(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create: {(int)response.StatusCode} {text}");
        using var document = JsonDocument.Parse(text);
        return (document.RootElement.GetProperty("userId").GetString()!, document.RootElement.GetProperty("homeRegion").GetString()!);
    }

    public static async Task<string> ProblemTypeAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.GetProperty("type").GetString()!;
    }

    /// <summary>Sends until <paramref name="done"/> holds or the limit is reached (at most 300 sends, 100 ms apart).</summary>
    public static async Task<bool> UntilAsync(Func<Task<bool>> done, TimeSpan limit)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var attempt = 0; attempt < 300 && clock.Elapsed < limit; attempt++)
        {
            if (await done())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }
}
