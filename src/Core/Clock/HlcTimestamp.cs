using System.Globalization;

namespace Geo.Core.Clock;

/// <summary>
/// A hybrid logical clock reading: 48 bits of Unix milliseconds and a 16-bit logical counter in one <see cref="long"/>.
/// Ordering of the packed value is the ordering of (milliseconds, counter).
/// </summary>
public readonly record struct HlcTimestamp(long Value) : IComparable<HlcTimestamp>
{
    /// <summary>
    /// Largest wall-clock part: 2^47 - 1 ms (about year 6429), so the packed value stays non-negative
    /// and orders correctly as a signed <see cref="long"/> (and as a Postgres bigint).
    /// </summary>
    public const long MaxMilliseconds = (1L << 47) - 1;

    /// <summary>Largest logical counter before the clock borrows the next millisecond.</summary>
    public const int MaxCounter = ushort.MaxValue;

    /// <summary>The zero timestamp, older than every real one.</summary>
    public static HlcTimestamp Zero => new(0);

    /// <summary>Unix milliseconds part.</summary>
    public long Milliseconds => (long)((ulong)Value >> 16);

    /// <summary>Logical counter part.</summary>
    public int Counter => (int)(Value & 0xFFFF);

    /// <summary>Packs milliseconds and counter.</summary>
    public static HlcTimestamp From(long milliseconds, int counter)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(milliseconds);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(milliseconds, MaxMilliseconds);
        ArgumentOutOfRangeException.ThrowIfNegative(counter);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(counter, MaxCounter);
        return new HlcTimestamp((milliseconds << 16) | (uint)counter);
    }

    public int CompareTo(HlcTimestamp other) => Value.CompareTo(other.Value);

    public static bool operator <(HlcTimestamp left, HlcTimestamp right) => left.Value < right.Value;
    public static bool operator >(HlcTimestamp left, HlcTimestamp right) => left.Value > right.Value;
    public static bool operator <=(HlcTimestamp left, HlcTimestamp right) => left.Value <= right.Value;
    public static bool operator >=(HlcTimestamp left, HlcTimestamp right) => left.Value >= right.Value;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Milliseconds}.{Counter}");
}
