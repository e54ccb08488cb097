using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Geo.ServiceDefaults.Time;

/// <summary>
/// The service's wall clock: <see cref="TimeProvider.System"/>, moved by <c>Geo:Clock:OffsetSeconds</c> (may be negative or
/// fractional) when set — a region whose clock is skewed on purpose (the fault campaign runs one). Only the wall clock
/// moves; timestamps and timers (elapsed time) are the system's.
/// </summary>
public sealed class SkewedClock : TimeProvider
{
    /// <summary>Configuration key of the offset, in seconds.</summary>
    public const string OffsetKey = "Geo:Clock:OffsetSeconds";

    private SkewedClock(TimeSpan offset) => Offset = offset;

    /// <summary>How far this clock is ahead of the system's (behind when negative).</summary>
    public TimeSpan Offset { get; }

    /// <summary><see cref="TimeProvider.System"/> without an offset, else a clock moved by it.</summary>
    public static TimeProvider FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var text = configuration[OffsetKey];
        if (string.IsNullOrWhiteSpace(text))
        {
            return System;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !double.IsFinite(seconds))
        {
            throw new InvalidOperationException($"{OffsetKey} must be a number of seconds, not '{text}'.");
        }

        return seconds == 0 ? System : new SkewedClock(TimeSpan.FromSeconds(seconds));
    }

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Offset;

    public override TimeZoneInfo LocalTimeZone => System.LocalTimeZone;

    public override long TimestampFrequency => System.TimestampFrequency;

    public override long GetTimestamp() => System.GetTimestamp();
}
