using System.Net;

namespace Geo.Client;

/// <summary>
/// The API answered with a problem (RFC 9457). Switch on <see cref="Type"/> (e.g. <c>urn:geo:problem:user-not-found</c>)
/// or catch a subclass; <see cref="Detail"/> is for humans.
/// </summary>
public class GeoProblemException(HttpStatusCode status, string type, string? title, string? detail)
    : Exception($"{(int)status} {type}: {detail ?? title}")
{
    /// <summary>Prefix of every Geo problem type.</summary>
    public const string TypePrefix = "urn:geo:problem:";

    /// <summary>The HTTP status.</summary>
    public HttpStatusCode Status { get; } = status;

    /// <summary>The stable problem type URI.</summary>
    public string Type { get; } = type;

    /// <summary>The type without its prefix, e.g. <c>precondition-failed</c>.</summary>
    public string Slug => Type.StartsWith(TypePrefix, StringComparison.Ordinal) ? Type[TypePrefix.Length..] : Type;

    /// <summary>The problem's title.</summary>
    public string? Title { get; } = title;

    /// <summary>The problem's detail.</summary>
    public string? Detail { get; } = detail;

    internal static GeoProblemException Create(HttpStatusCode status, string type, string? title, string? detail) => (int)status switch
    {
        404 => new GeoNotFoundException(status, type, title, detail),
        412 => new GeoPreconditionFailedException(status, type, title, detail),
        400 or 413 or 415 or 422 => new GeoInvalidRequestException(status, type, title, detail),
        409 or 429 or 503 or 504 => new GeoUnavailableException(status, type, title, detail),
        _ => new GeoProblemException(status, type, title, detail),
    };
}

/// <summary>404: no such user or document.</summary>
public sealed class GeoNotFoundException(HttpStatusCode status, string type, string? title, string? detail) : GeoProblemException(status, type, title, detail);

/// <summary>412: the If-Match / If-None-Match precondition does not hold; re-read the document and decide again.</summary>
public sealed class GeoPreconditionFailedException(HttpStatusCode status, string type, string? title, string? detail) : GeoProblemException(status, type, title, detail);

/// <summary>400, 413, 415, 422: the request itself is wrong (or, for <c>counter-overflow</c>, cannot apply); retrying it cannot help.</summary>
public sealed class GeoInvalidRequestException(HttpStatusCode status, string type, string? title, string? detail) : GeoProblemException(status, type, title, detail);

/// <summary>409, 429, 503, 504 still failing after the configured retries.</summary>
public sealed class GeoUnavailableException(HttpStatusCode status, string type, string? title, string? detail) : GeoProblemException(status, type, title, detail);
