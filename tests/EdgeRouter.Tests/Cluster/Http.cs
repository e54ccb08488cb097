using System.Net;
using System.Text;
using System.Text.Json;
using Geo.Contracts.Directory;

namespace Geo.EdgeRouter.Tests.Cluster;

internal static class Http
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static string? Header(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;

    public static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode status, string type)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(text);
        Assert.Equal("urn:geo:problem:" + type, document.RootElement.GetProperty("type").GetString());
        return document.RootElement.Clone();
    }

    /// <summary>Creates a user through the edge; returns its id and the creation response's headers.</summary>
    public static async Task<(string UserId, HttpResponseMessage Response)> CreateUserAsync(HttpClient edge, string residency, string? homeRegion = null)
    {
        var body = homeRegion is null ? $"{{\"residency\":\"{residency}\"}}" : $"{{\"residency\":\"{residency}\",\"homeRegion\":\"{homeRegion}\"}}";
        var response = await edge.PostAsync(new Uri("/v1/users", UriKind.Relative), Json(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create: {(int)response.StatusCode} {text}");
        using var document = JsonDocument.Parse(text);
        return (document.RootElement.GetProperty("userId").GetString()!, response);
    }

    /// <summary>What the replicator will do for directory entries: copy one user's entry from one directory to another.</summary>
    public static async Task CopyUserEntryAsync(Uri from, Uri to, string userId, CancellationToken ct)
    {
        using var source = Geo.Testing.Security.TestPki.Channel(from);
        using var target = Geo.Testing.Security.TestPki.Channel(to);
        var entry = await new Contracts.Directory.Directory.DirectoryClient(source).GetUserAsync(new GetUserRequest { UserId = userId }, cancellationToken: ct);
        await new Contracts.Directory.Directory.DirectoryClient(target).ApplyUserEntriesAsync(new ApplyUserEntriesRequest { Entries = { entry } }, cancellationToken: ct);
    }

    /// <summary>True when the region's directory knows the user.</summary>
    public static async Task<bool> DirectoryKnowsAsync(Uri directory, string userId, CancellationToken ct)
    {
        using var channel = Geo.Testing.Security.TestPki.Channel(directory);
        try
        {
            var entry = await new Contracts.Directory.Directory.DirectoryClient(channel).GetUserAsync(new GetUserRequest { UserId = userId }, cancellationToken: ct);
            return !entry.Deleted;
        }
        catch (Grpc.Core.RpcException ex) when (ex.StatusCode == Grpc.Core.StatusCode.NotFound)
        {
            return false;
        }
    }
}
