using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Geo.Core.Clock;

namespace Geo.Core.Versioning;

/// <summary>
/// The version of a replicated value: (HLC, origin region). Totally ordered by HLC, then by origin
/// (ordinal), so every region picks the same winner. Renders as the ETag <c>"hlc-origin"</c>.
/// </summary>
public readonly record struct DataVersion(HlcTimestamp Hlc, string Origin) : IComparable<DataVersion>
{
    /// <summary>Older than every real version.</summary>
    public static DataVersion None => new(HlcTimestamp.Zero, string.Empty);

    public int CompareTo(DataVersion other)
    {
        var byClock = Hlc.CompareTo(other.Hlc);
        return byClock != 0 ? byClock : string.CompareOrdinal(Origin ?? string.Empty, other.Origin ?? string.Empty);
    }

    public static bool operator <(DataVersion left, DataVersion right) => left.CompareTo(right) < 0;
    public static bool operator >(DataVersion left, DataVersion right) => left.CompareTo(right) > 0;
    public static bool operator <=(DataVersion left, DataVersion right) => left.CompareTo(right) <= 0;
    public static bool operator >=(DataVersion left, DataVersion right) => left.CompareTo(right) >= 0;

    /// <summary>The larger of two versions.</summary>
    public static DataVersion Max(DataVersion a, DataVersion b) => a >= b ? a : b;

    /// <summary>The quoted ETag form, e.g. <c>"1a2b3c4d5e6f0001-eu-west"</c> (the <c>ETag</c> header).</summary>
    public string ToETag() => $"\"{ToToken()}\"";

    /// <summary>The bare token, e.g. <c>1a2b3c4d5e6f0001-eu-west</c> (the <c>version</c> field of bodies).</summary>
    public string ToToken() => string.Create(CultureInfo.InvariantCulture, $"{Hlc.Value:x16}-{Origin}");

    /// <summary>Parses the ETag form (quoted or not, weak prefix tolerated).</summary>
    public static bool TryParseETag(string? text, [NotNullWhen(true)] out DataVersion? version)
    {
        version = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim();
        if (s.StartsWith("W/", StringComparison.Ordinal))
        {
            s = s[2..];
        }

        s = s.Trim('"');
        var dash = s.IndexOf('-', StringComparison.Ordinal);
        if (dash != 16 || s.Length == 17
            || !long.TryParse(s.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hlc))
        {
            return false;
        }

        version = new DataVersion(new HlcTimestamp(hlc), s[17..]);
        return true;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Hlc}@{Origin}");
}
