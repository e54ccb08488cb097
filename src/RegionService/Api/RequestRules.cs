using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Geo.Core.Versioning;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Api;

/// <summary>The limits of ARCHITECTURE.md §4: names, keys, ids, bodies; each violation becomes a precise problem.</summary>
internal static partial class RequestRules
{
    public const int MaxKeyLength = 256;
    public const int MaxIdempotencyKeyLength = 256;

    [GeneratedRegex("^[a-z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();

    public static ProblemHttpResult? CheckName(string what, string value)
        => NamePattern().IsMatch(value) ? null : RegionProblems.InvalidName(what, value, "use 1-64 characters of a-z, 0-9, '_' and '-'");

    public static ProblemHttpResult? CheckKey(string key)
        => key.Length is >= 1 and <= MaxKeyLength && !key.Any(char.IsControl)
            ? null
            : RegionProblems.InvalidName("key", key, $"use 1-{MaxKeyLength} characters without control characters");

    /// <summary>Idempotency keys are 1–256 printable ASCII characters (e.g. a UUID).</summary>
    public static ProblemHttpResult? CheckIdempotencyKey(string key)
        => key.Length <= MaxIdempotencyKeyLength && key.All(c => c is >= ' ' and <= '~')
            ? null
            : RegionProblems.InvalidRequest($"Idempotency-Key must be 1-{MaxIdempotencyKeyLength} printable ASCII characters (a UUID is a good key).");

    public static bool IsUserId(string userId) => Guid.TryParseExact(userId, "D", out _);

    /// <summary>Reads a JSON body up to <paramref name="maxBytes"/>: 415 when not JSON, 413 when larger, 400 when malformed.</summary>
    public static async Task<(string? Json, ProblemHttpResult? Problem)> ReadJsonBodyAsync(HttpRequest request, int maxBytes, CancellationToken ct)
    {
        if (!IsJson(request.ContentType))
        {
            return (null, RegionProblems.NotJson(request.ContentType));
        }

        if (request.ContentLength > maxBytes)
        {
            return (null, RegionProblems.TooLarge(maxBytes));
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(maxBytes + 1, 16 * 1024));
        try
        {
            using var collected = new MemoryStream();
            int read;
            while ((read = await request.Body.ReadAsync(buffer, ct)) > 0)
            {
                if (collected.Length + read > maxBytes)
                {
                    return (null, RegionProblems.TooLarge(maxBytes));
                }

                collected.Write(buffer, 0, read);
            }

            var bytes = collected.GetBuffer().AsMemory(0, (int)collected.Length);
            try
            {
                using var document = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
            }
            catch (JsonException ex)
            {
                return (null, RegionProblems.MalformedJson($"The body is not valid JSON: {ex.Message}"));
            }

            var text = Encoding.UTF8.GetString(bytes.Span);
            // Postgres jsonb cannot store \u0000; refuse it here rather than fail in the database.
            return text.Contains("\\u0000", StringComparison.Ordinal)
                ? (null, RegionProblems.MalformedJson("JSON strings may not contain \\u0000."))
                : (text, null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Parses If-Match: absent → no condition; present but not one of our ETags → 400.</summary>
    public static (bool Present, DataVersion? Version, ProblemHttpResult? Problem) ReadIfMatch(HttpRequest request)
    {
        var header = request.Headers.IfMatch;
        if (header.Count == 0)
        {
            return (false, null, null);
        }

        var text = header.ToString();
        return DataVersion.TryParseETag(text, out var version)
            ? (true, version, null)
            : (true, null, RegionProblems.InvalidRequest($"If-Match '{text}' is not an ETag this service issued."));
    }

    private static bool IsJson(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType))
        {
            return false;
        }

        var mediaType = contentType.Split(';', 2)[0].Trim();
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase);
    }
}
