using System.Globalization;
using Geo.RegionService.Api;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Documents;

/// <summary>The checks of a document request that run before admission (see <see cref="RequestChecks"/>).</summary>
internal static class DocumentChecks
{
    /// <summary>The collection's name and the document's key (400 invalid-name).</summary>
    public static ProblemHttpResult? Address(HttpContext http)
        => RequestRules.CheckName("collection", RequestChecks.Route(http, "collection")) ?? RequestRules.CheckKey(Unescape(RequestChecks.Route(http, "key")));

    /// <summary>A list's collection, <c>limit</c> and <c>after</c>, kept as <see cref="DocumentPage"/>.</summary>
    public static ProblemHttpResult? Page(HttpContext http, int maxPageSize)
    {
        var query = http.Request.Query;
        var limit = query["limit"].Count > 0 ? (string?)query["limit"] : null; // as the handler's string? parameter binds it
        var after = query["after"].Count > 0 ? (string?)query["after"] : null;
        if (!int.TryParse(limit ?? "100", NumberStyles.None, CultureInfo.InvariantCulture, out var take))
        {
            return RegionProblems.InvalidRequest("limit must be a whole number.");
        }

        if (RequestRules.CheckName("collection", RequestChecks.Route(http, "collection")) is { } invalid)
        {
            return invalid;
        }

        if (take < 1 || take > maxPageSize)
        {
            return RegionProblems.InvalidRequest($"limit must be between 1 and {maxPageSize}.");
        }

        if (after is not null && RequestRules.CheckKey(after) is { } badAfter)
        {
            return badAfter;
        }

        http.Features.Set(new DocumentPage(take, after));
        return null;
    }

    // Kestrel decodes the path except %2F (it would change the segments); keys may contain '/', so restore it.
    public static string Unescape(string key) => key.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
}

/// <summary>The page a list asks for, as read by <see cref="DocumentChecks.Page"/>.</summary>
internal sealed record DocumentPage(int Take, string? After)
{
    public static DocumentPage Of(HttpContext http) => http.Features.GetRequiredFeature<DocumentPage>();
}
