using System.Text.Json;
using Geo.ServiceDefaults.Json;
using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.EdgeRouter.Routing;

/// <summary>What the edge reads of a request to route it: the user id in the path, or the residency of a new user.</summary>
internal static class RequestShape
{
    /// <summary><c>POST /v1/users</c>.</summary>
    public static bool IsCreateUser(HttpRequest request)
        => HttpMethods.IsPost(request.Method) && (request.Path.Equals("/v1/users", StringComparison.Ordinal) || request.Path.Equals("/v1/users/", StringComparison.Ordinal));

    /// <summary><c>/openapi/…</c> or <c>/scalar/…</c>: the API's contract and its rendered reference.</summary>
    public static bool IsContract(PathString path)
        => path.StartsWithSegments("/openapi", StringComparison.Ordinal) || path.StartsWithSegments("/scalar", StringComparison.Ordinal);

    /// <summary>The <c>{userId}</c> of <c>/v1/users/{userId}[/...]</c>, or null.</summary>
    public static string? UserIdOf(PathString path)
    {
        if (!path.StartsWithSegments("/v1/users", StringComparison.Ordinal, out var rest) || !rest.HasValue || rest.Value!.Length < 2)
        {
            return null;
        }

        var value = rest.Value!;
        var end = value.IndexOf('/', 1);
        var id = end < 0 ? value[1..] : value[1..end];
        return id.Length > 0 ? id : null;
    }

    /// <summary>
    /// Buffers a create body (at most <paramref name="maxBytes"/>) so it can be forwarded unchanged, and reads its
    /// <c>residency</c> and optional <c>homeRegion</c>. A problem when the body is too large, not JSON, or has no residency.
    /// </summary>
    public static async Task<(CreateUserShape? Shape, ProblemHttpResult? Problem)> ReadCreateAsync(HttpRequest request, int maxBytes, CancellationToken ct)
    {
        // The same reader and limits as the regional API: what the edge accepts, the API accepts.
        var (body, problem) = await JsonBodyReader.ReadAsync(request, new JsonBodyLimits(maxBytes), ct);
        if (problem is not null)
        {
            return (null, problem);
        }

        // Forwarded unchanged from memory (at most maxBytes), readable again for a retry after a refused connection.
        request.Body = new MemoryStream(body!.Utf8, writable: false);
        request.ContentLength = body.Utf8.Length;
        request.Headers.TransferEncoding = default;
        using var document = JsonDocument.Parse(body.Utf8, new JsonDocumentOptions { MaxDepth = JsonBodyLimits.DefaultMaxDepth });
        if (document.RootElement.ValueKind == JsonValueKind.Object
            && StringProperty(document.RootElement, "residency") is { Length: > 0 } residency)
        {
            return (new CreateUserShape(residency, StringProperty(document.RootElement, "homeRegion")), null);
        }

        return (null, GeoProblems.Create(StatusCodes.Status400BadRequest, "invalid-request", "Invalid request",
            "\"residency\" is required, e.g. {\"residency\": \"eu\"}."));
    }

    // The regional API binds with JsonSerializerOptions.Web: property names are case-insensitive.
    private static string? StringProperty(JsonElement element, string name)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (property.Name.Equals(name, StringComparison.OrdinalIgnoreCase) && property.Value.ValueKind == JsonValueKind.String)
            {
                return property.Value.GetString();
            }
        }

        return null;
    }
}

/// <summary>What routing needs of a create body.</summary>
internal sealed record CreateUserShape(string Residency, string? HomeRegion);
