namespace Geo.RegionService.Directory;

/// <summary>A user's directory entry: no personal data, only where the user may and does live.</summary>
internal sealed record UserRecord(string UserId, string Residency, string HomeRegion);

/// <summary>The region's user directory, as the regional API needs it.</summary>
internal interface IUserDirectory
{
    /// <summary>The user, or null when unknown or erased. Throws <see cref="DirectoryUnavailableException"/> when the directory cannot answer.</summary>
    Task<UserRecord?> GetUserAsync(string userId, CancellationToken ct);

    /// <summary>
    /// Registers a new user; with a <paramref name="key"/>, a repeat of the same request returns the first user
    /// (<c>Replayed</c>) and another request under the key throws <see cref="CreateKeyReusedException"/>.
    /// </summary>
    Task<(UserRecord User, bool Replayed)> CreateUserAsync(UserRecord user, CreateKey? key, CancellationToken ct);

    /// <summary>
    /// Records the user's erase marker (the entry's tombstone) durably in this region's directory, from where it
    /// replicates to every region; returns the marker's version (the erase version), or null when the user is unknown.
    /// A repeat returns the first erase's version.
    /// </summary>
    Task<Core.Versioning.DataVersion?> EraseUserAsync(string userId, CancellationToken ct);
}

/// <summary>The Idempotency-Key of a user creation, with the hash of the request it came with and how long it is kept.</summary>
internal sealed record CreateKey(string Key, byte[] RequestHash, TimeSpan Ttl);

/// <summary>The create's Idempotency-Key was used before for another request.</summary>
internal sealed class CreateKeyReusedException(string message) : Exception(message);

/// <summary>The directory could not be reached in time.</summary>
internal sealed class DirectoryUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
