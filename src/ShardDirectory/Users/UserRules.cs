using Geo.Contracts.Directory;
using Geo.Core.Topology;
using Geo.Core.Users;
using Geo.ShardDirectory.Grpc;

namespace Geo.ShardDirectory.Users;

/// <summary>What a directory entry must look like; every breach is an <see cref="RpcErrors"/> failure naming the field.</summary>
internal static class UserRules
{
    /// <summary>Ids are canonical lowercase UUID text: the bucket hashes the exact string, so one user has one spelling.</summary>
    public static void RequireUserId(string userId, string field = "user_id")
    {
        if (!UserIds.IsCanonical(userId))
        {
            RpcErrors.InvalidArgument($"{field}: '{userId}' is not a canonical lowercase UUID such as 0190f5f4-5a1e-7cc4-9b8e-2f1f3c7d9a10.");
        }
    }

    /// <summary>Residency must be known; the home region must exist (INVALID_ARGUMENT) and be allowed for it (FAILED_PRECONDITION).</summary>
    public static void RequirePlacement(GeoTopology topology, string residency, string homeRegion, string at = "")
    {
        if (!topology.IsKnownResidency(residency))
        {
            RpcErrors.InvalidArgument($"{at}residency: '{residency}' is unknown; use one of: {string.Join(", ", topology.Jurisdictions.Append(GeoTopology.GlobalResidency))}.");
        }

        if (!topology.Regions.ContainsKey(homeRegion))
        {
            RpcErrors.InvalidArgument($"{at}home_region: '{homeRegion}' is not a region of the topology; use one of: {string.Join(", ", topology.Regions.Keys)}.");
        }

        if (!topology.IsAllowed(residency, homeRegion))
        {
            RpcErrors.FailedPrecondition($"{at}home_region: '{homeRegion}' is not allowed for residency '{residency}'; allowed: {string.Join(", ", topology.AllowedRegions(residency))}.");
        }
    }

    /// <summary>The FAILED_PRECONDITION detail of a create whose idempotency key came with another request; clients match its prefix.</summary>
    public const string IdempotencyKeyReused = DirectoryErrors.IdempotencyKeyReused + ": this Idempotency-Key was used for another create request.";

    /// <summary>Keys are 1–256 printable ASCII characters; a hash comes with every key.</summary>
    public static CreateKey? CreateKey(CreateUserRequest request)
    {
        if (request.IdempotencyKey.Length == 0)
        {
            return null;
        }

        if (request.IdempotencyKey.Length > 256 || request.IdempotencyKey.Any(c => c is < ' ' or > '~'))
        {
            RpcErrors.InvalidArgument("idempotency_key: 1 to 256 printable ASCII characters.");
        }

        if (request.RequestHash.Length is 0 or > 64)
        {
            RpcErrors.InvalidArgument("request_hash: required with idempotency_key (at most 64 bytes).");
        }

        if (request.KeyTtlSeconds < 0)
        {
            RpcErrors.InvalidArgument("key_ttl_seconds: must not be negative (0 means 24 hours).");
        }

        var ttl = request.KeyTtlSeconds == 0 ? TimeSpan.FromHours(24) : TimeSpan.FromSeconds(request.KeyTtlSeconds);
        return new CreateKey(request.IdempotencyKey, request.RequestHash.ToByteArray(), ttl);
    }

    /// <summary>A replicated entry: well-formed id, placement and version.</summary>
    public static void RequireReplicable(GeoTopology topology, UserEntry entry, int index)
    {
        var at = $"entries[{index}].";
        RequireUserId(entry.UserId, at + "user_id");
        RequirePlacement(topology, entry.Residency, entry.HomeRegion, at);
        if (entry.Version is null || entry.Version.Hlc <= 0 || string.IsNullOrEmpty(entry.Version.Origin))
        {
            RpcErrors.InvalidArgument($"{at}version: missing; a replicated entry carries the (hlc > 0, origin) it was written with.");
        }
    }
}
