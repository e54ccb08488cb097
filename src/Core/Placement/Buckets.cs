using System.IO.Hashing;
using System.Text;

namespace Geo.Core.Placement;

/// <summary>Maps a user to one of the fixed 4096 buckets; the bucket never changes, shards own buckets.</summary>
public static class Buckets
{
    /// <summary>Number of buckets; fixed forever (changing it would re-home every user).</summary>
    public const int Count = 4096;

    /// <summary><c>XxHash3(utf8(userId)) mod 4096</c>, identical in every process and on every machine.</summary>
    public static int Of(string userId)
    {
        ArgumentNullException.ThrowIfNull(userId);
        var max = Encoding.UTF8.GetMaxByteCount(userId.Length);
        var rented = max <= 512 ? null : System.Buffers.ArrayPool<byte>.Shared.Rent(max);
        try
        {
            Span<byte> buffer = rented ?? stackalloc byte[max];
            var written = Encoding.UTF8.GetBytes(userId, buffer);
            return (int)(XxHash3.HashToUInt64(buffer[..written]) % Count);
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }
}
