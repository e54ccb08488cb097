using System.Security.Cryptography;
using System.Text;

namespace Geo.Core.Logging;

/// <summary>
/// How a log line names a user: <c>u:</c> + 16 hex digits of HMAC-SHA256(key, user id), never the id. The key is the
/// deployment's <c>Geo:Logging:UserHashKey</c> (set once at start-up by the service defaults); without one, a random
/// key of this process, so hashes correlate only within its life. See docs/security.md.
/// </summary>
public static class UserLogName
{
    private static byte[] _key = RandomNumberGenerator.GetBytes(32);

    /// <summary>True once a configured key replaced the random one.</summary>
    public static bool IsConfigured { get; private set; }

    /// <summary>Uses <paramref name="key"/> (at least 16 bytes) from now on.</summary>
    public static void Configure(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length < 16)
        {
            throw new ArgumentException("The user hash key must be at least 16 bytes.", nameof(key));
        }

        _key = (byte[])key.Clone();
        IsConfigured = true;
    }

    /// <summary>The name of <paramref name="userId"/> in logs.</summary>
    public static string Of(string userId)
    {
        ArgumentNullException.ThrowIfNull(userId);
        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(userId), mac);
        return "u:" + Convert.ToHexStringLower(mac[..8]);
    }
}
