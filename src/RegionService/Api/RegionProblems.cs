using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Api;

/// <summary>Every problem the regional API answers with; each has a stable type (<c>urn:geo:problem:{slug}</c>).</summary>
internal static class RegionProblems
{
    public static ProblemHttpResult MalformedJson(string detail)
        => GeoProblems.Create(StatusCodes.Status400BadRequest, "malformed-json", "Malformed JSON", detail);

    public static ProblemHttpResult InvalidRequest(string detail)
        => GeoProblems.Create(StatusCodes.Status400BadRequest, "invalid-request", "Invalid request", detail);

    public static ProblemHttpResult InvalidName(string what, string value, string rule)
        => GeoProblems.Create(StatusCodes.Status400BadRequest, "invalid-name", $"Invalid {what}", $"'{Truncate(value)}' is not a valid {what}: {rule}.");

    public static ProblemHttpResult UnknownResidency(string residency, IEnumerable<string> known)
        => GeoProblems.Create(StatusCodes.Status400BadRequest, "unknown-residency", "Unknown residency",
            $"Residency '{Truncate(residency)}' is not served by this deployment; use one of: {string.Join(", ", known)}.");

    public static ProblemHttpResult HomeRegionNotAllowed(string home, string residency)
        => GeoProblems.Create(StatusCodes.Status400BadRequest, "home-region-not-allowed", "Home region not allowed",
            $"Region '{Truncate(home)}' is not allowed for residency '{residency}'.");

    public static ProblemHttpResult UserNotFound(string userId)
        => GeoProblems.Create(StatusCodes.Status404NotFound, "user-not-found", "User not found", $"No user '{Truncate(userId)}'.");

    public static ProblemHttpResult DocumentNotFound(string collection, string key)
        => GeoProblems.Create(StatusCodes.Status404NotFound, "document-not-found", "Document not found", $"No document '{Truncate(key)}' in '{collection}'.");

    public static ProblemHttpResult IdempotencyInFlight()
        => GeoProblems.Create(StatusCodes.Status409Conflict, "idempotency-key-in-flight", "Request in flight",
            "A request with this Idempotency-Key is still being processed; retry later.");

    public static ProblemHttpResult PreconditionFailed(string? current)
        => GeoProblems.Create(StatusCodes.Status412PreconditionFailed, "precondition-failed", "Precondition failed",
            current is null
                ? "The precondition (If-Match / If-None-Match) does not hold: the document does not exist."
                : $"The precondition (If-Match / If-None-Match) does not hold for the current version {current}.");

    public static ProblemHttpResult CounterOverflow(string name, long delta)
        => GeoProblems.Create(StatusCodes.Status422UnprocessableEntity, "counter-overflow", "Counter overflow",
            $"Adding {delta} to counter '{name}' would take it (or this region's share of it) beyond the 64-bit range; it is unchanged.");

    public static ProblemHttpResult TooLarge(long limit)
        => GeoProblems.Create(StatusCodes.Status413PayloadTooLarge, "body-too-large", "Body too large", $"The body exceeds the limit of {limit} bytes.");

    public static ProblemHttpResult NotJson(string? contentType)
        => GeoProblems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
            $"Send the body as application/json (got '{contentType ?? "none"}').");

    public static ProblemHttpResult RegionNotAllowed(string region, string residency, IEnumerable<string> allowed)
        => GeoProblems.Create(StatusCodes.Status421MisdirectedRequest, "region-not-allowed", "Region not allowed for this user",
            $"Region '{region}' may not hold data of residency '{residency}'; send the request to one of: {string.Join(", ", allowed)}.");

    public static ProblemHttpResult IdempotencyKeyReused()
        => GeoProblems.Create(StatusCodes.Status422UnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
            "This Idempotency-Key was used for a different request; use a new key for a new request.");

    public static ProblemHttpResult Unavailable(string slug, string detail)
        => GeoProblems.Create(StatusCodes.Status503ServiceUnavailable, slug, "Service unavailable", detail);

    public static ProblemHttpResult DirectoryUnavailable()
        => Unavailable("directory-unavailable", "The user directory did not answer in time; retry shortly.");

    public static ProblemHttpResult ShardMoving()
        => Unavailable("shard-moving", "The user's data is being moved between shards; retry in a moment.");

    public static ProblemHttpResult NoShardMap()
        => Unavailable("shard-map-unavailable", "This region has not loaded its shard map yet; retry shortly.");

    private static string Truncate(string value) => value.Length <= 80 ? value : value[..80] + "…";
}
