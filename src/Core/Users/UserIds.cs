namespace Geo.Core.Users;

/// <summary>
/// The one spelling of a user id: a UUID in lowercase hyphenated form (<c>0190f5f4-5a1e-7cc4-9b8e-2f1f3c7d9a10</c>).
/// Buckets hash the exact string, so every service validates and compares ids in this form only.
/// </summary>
public static class UserIds
{
    /// <summary>Length of the canonical form.</summary>
    public const int Length = 36;

    /// <summary>True when <paramref name="userId"/> is already canonical (36 characters, lowercase hex and hyphens).</summary>
    public static bool IsCanonical(string? userId)
        => userId is { Length: Length } && Guid.TryParseExact(userId, "D", out _) && !userId.Any(char.IsAsciiLetterUpper);
}
