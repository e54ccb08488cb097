using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.ServiceDefaults.Problems;

/// <summary>
/// RFC 9457 problem details with stable <c>type</c> URIs (<c>urn:geo:problem:{slug}</c>): clients switch on the type,
/// never on the human-readable title or detail.
/// </summary>
public static class GeoProblems
{
    /// <summary>Prefix of every Geo problem type.</summary>
    public const string TypePrefix = "urn:geo:problem:";

    /// <summary>A problem result with a stable type.</summary>
    public static ProblemHttpResult Create(int status, string slug, string title, string detail, IDictionary<string, object?>? extensions = null)
        => TypedResults.Problem(detail: Printable(detail), statusCode: status, title: title, type: TypePrefix + slug, extensions: extensions);

    /// <summary>
    /// A detail often quotes the caller's input: lone surrogates (which JSON cannot encode) and control characters are
    /// replaced, so writing the problem can never fail.
    /// </summary>
    internal static string Printable(string detail)
    {
        ArgumentNullException.ThrowIfNull(detail);
        System.Text.StringBuilder? builder = null;
        for (var i = 0; i < detail.Length; i++)
        {
            if (char.IsSurrogatePair(detail, i))
            {
                builder?.Append(detail, i, 2);
                i++;
                continue;
            }

            var bad = char.IsControl(detail[i]) || char.IsSurrogate(detail[i]);
            if (bad && builder is null)
            {
                builder = new System.Text.StringBuilder(detail.Length).Append(detail, 0, i);
            }

            builder?.Append(bad ? '\uFFFD' : detail[i]);
        }

        return builder?.ToString() ?? detail;
    }

    /// <summary>Writes a problem directly (middleware that runs before endpoints, e.g. load shedding).</summary>
    public static Task WriteAsync(HttpContext context, int status, string slug, string title, string detail)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Create(status, slug, title, detail).ExecuteAsync(context);
    }
}
