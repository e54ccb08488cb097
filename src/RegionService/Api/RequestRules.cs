using System.Text.RegularExpressions;
using Geo.Core.Users;
using Geo.Core.Versioning;
using Geo.ServiceDefaults.Json;
using Geo.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Api;

/// <summary>The limits of docs/architecture.md §4: names, keys, ids, bodies; each violation becomes a precise problem.</summary>
internal static partial class RequestRules
{
    public const int MaxKeyLength = 256;

    [GeneratedRegex("^[a-z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();

    public static ProblemHttpResult? CheckName(string what, string value)
        => NamePattern().IsMatch(value) ? null : RegionProblems.InvalidName(what, value, "use 1-64 characters of a-z, 0-9, '_' and '-'");

    public static ProblemHttpResult? CheckKey(string key)
        => key.Length is >= 1 and <= MaxKeyLength && !key.Any(char.IsControl)
            ? null
            : RegionProblems.InvalidName("key", key, $"use 1-{MaxKeyLength} characters without control characters");

    /// <summary>Only the canonical lowercase form, as issued, names a user; any other spelling is answered 404.</summary>
    public static bool IsUserId(string userId) => UserIds.IsCanonical(userId);

    /// <summary>Reads a JSON body with the shared reader (415, 413, 400 as docs/api.md lists them).</summary>
    public static async Task<(string? Json, ProblemHttpResult? Problem)> ReadJsonBodyAsync(HttpRequest request, int maxBytes, CancellationToken ct)
    {
        var (body, problem) = await JsonBodyReader.ReadAsync(request, new JsonBodyLimits(maxBytes), ct);
        return (body?.Text, problem);
    }

    /// <summary>
    /// Reads If-Match and If-None-Match (RFC 9110 §13.1.1-2): <c>*</c> or a list of entity tags. If-Match compares
    /// strongly (a weak tag never matches); a tag this service never issued matches nothing, so the write answers 412.
    /// A header that is empty, or mixes <c>*</c> with tags, is malformed (400).
    /// </summary>
    public static (WriteCondition? Condition, ProblemHttpResult? Problem) ReadPreconditions(HttpRequest request)
    {
        var condition = WriteCondition.None;
        if (request.Headers.IfMatch.Count > 0)
        {
            var (any, versions, ok) = ParseTags(request.Headers.IfMatch.ToString(), strong: true);
            if (!ok)
            {
                return (null, RegionProblems.InvalidRequest($"If-Match '{request.Headers.IfMatch}' is neither * nor a list of entity tags."));
            }

            condition = any ? condition.WithIfMatchAny() : condition.WithIfMatch(versions);
        }

        if (request.Headers.IfNoneMatch.Count > 0)
        {
            var (any, versions, ok) = ParseTags(request.Headers.IfNoneMatch.ToString(), strong: false);
            if (!ok)
            {
                return (null, RegionProblems.InvalidRequest($"If-None-Match '{request.Headers.IfNoneMatch}' is neither * nor a list of entity tags."));
            }

            condition = any ? condition.WithIfNoneMatchAny() : condition.WithIfNoneMatch(versions);
        }

        return (condition.IsNone ? null : condition, null);
    }

    private static (bool Any, List<DataVersion> Versions, bool Ok) ParseTags(string header, bool strong)
    {
        var items = header.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (items.Length == 0)
        {
            return (false, [], false);
        }

        if (items.Contains("*"))
        {
            return (true, [], items.Length == 1);
        }

        var versions = new List<DataVersion>();
        foreach (var item in items)
        {
            var weak = item.StartsWith("W/", StringComparison.Ordinal);
            if (weak && strong)
            {
                continue; // strong comparison: a weak tag matches nothing
            }

            // Quoted per RFC 9110; the bare token of a body's "version" is accepted as the same tag.
            if (DataVersion.TryParseETag(item, out var version))
            {
                versions.Add(version.Value);
            }
        }

        return (false, versions, true);
    }
}
