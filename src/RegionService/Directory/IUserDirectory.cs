namespace Geo.RegionService.Directory;

/// <summary>A user's directory entry: no personal data, only where the user may and does live.</summary>
internal sealed record UserRecord(string UserId, string Residency, string HomeRegion);

/// <summary>The region's user directory, as the regional API needs it.</summary>
internal interface IUserDirectory
{
    /// <summary>The user, or null when unknown or erased. Throws <see cref="DirectoryUnavailableException"/> when the directory cannot answer.</summary>
    Task<UserRecord?> GetUserAsync(string userId, CancellationToken ct);

    /// <summary>Registers a new user.</summary>
    Task<UserRecord> CreateUserAsync(UserRecord user, CancellationToken ct);

    /// <summary>Tombstones the user's entry.</summary>
    Task EraseUserAsync(string userId, CancellationToken ct);
}

/// <summary>The directory could not be reached in time.</summary>
internal sealed class DirectoryUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
