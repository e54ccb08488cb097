using System.Text.Json;
using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Geo.EdgeRouter.Routing;

/// <summary>What the edge reads of a request to route it: the user id in the path, or the residency of a new user.</summary>
internal static class RequestShape
{
    private const int MaxUserIdLength = 64;

    /// <summary><c>POST /v1/users</c>.</summary>
    public static bool IsCreateUser(HttpRequest request)
        => HttpMethods.IsPost(request.Method) && (request.Path.Equals("/v1/users", StringComparison.Ordinal) || request.Path.Equals("/v1/users/", StringComparison.Ordinal));

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

    /// <summary>Ids are UUIDv7 text; anything else cannot name a user, so the directory is not asked.</summary>
    public static bool IsPlausibleUserId(string userId)
        => userId.Length <= MaxUserIdLength && userId.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    /// <summary>
    /// Buffers a create body (at most <paramref name="maxBytes"/>) so it can be forwarded unchanged, and reads its
    /// <c>residency</c> and optional <c>homeRegion</c>. A problem when the body is too large, not JSON, or has no residency.
    /// </summary>
    public static async Task<(CreateUserShape? Shape, ProblemHttpResult? Problem)> ReadCreateAsync(HttpRequest request, int maxBytes, CancellationToken ct)
    {
        if (!IsJson(request.ContentType))
        {
            return (null, GeoProblems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
                $"Send Content-Type: application/json (got '{request.ContentType}')."));
        }

        if (request.ContentLength > maxBytes)
        {
            return (null, TooLarge(maxBytes));
        }

        request.EnableBuffering(bufferThreshold: maxBytes, bufferLimit: maxBytes);
        var buffer = new byte[maxBytes + 1];
        var length = 0;
        int read;
        try
        {
            while (length < buffer.Length && (read = await request.Body.ReadAsync(buffer.AsMemory(length), ct)) > 0)
            {
                length += read;
            }
        }
        catch (IOException)
        {
            // FileBufferingReadStream throws once the buffer limit is passed.
            return (null, TooLarge(maxBytes));
        }

        if (length > maxBytes)
        {
            return (null, TooLarge(maxBytes));
        }

        request.Body.Position = 0;
        try
        {
            using var document = JsonDocument.Parse(buffer.AsMemory(0, length), new JsonDocumentOptions { MaxDepth = 16 });
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && StringProperty(document.RootElement, "residency") is { Length: > 0 } residency)
            {
                return (new CreateUserShape(residency, StringProperty(document.RootElement, "homeRegion")), null);
            }
        }
        catch (JsonException ex)
        {
            return (null, GeoProblems.Create(StatusCodes.Status400BadRequest, "malformed-json", "Malformed JSON", $"The body is not valid JSON: {ex.Message}"));
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

    private static ProblemHttpResult TooLarge(int maxBytes)
        => GeoProblems.Create(StatusCodes.Status413PayloadTooLarge, "body-too-large", "Body too large", $"The body exceeds the limit of {maxBytes} bytes.");

    private static bool IsJson(string? contentType)
        => MediaTypeHeaderValue.TryParse(contentType, out var media)
            && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase));
}

/// <summary>What routing needs of a create body.</summary>
internal sealed record CreateUserShape(string Residency, string? HomeRegion);
