namespace Geo.Contracts;

/// <summary>
/// gRPC takes a deadline as a <see cref="DateTime"/> instant (and sends the time left as <c>grpc-timeout</c>): every
/// Geo call derives it from the caller's <see cref="TimeProvider"/> and a timeout from options, never from
/// <see cref="DateTime.UtcNow"/>. The channel compares the instant with the system clock, so a test clock that lags
/// the wall clock by more than the timeout shortens the call's real deadline.
/// </summary>
public static class GrpcDeadlines
{
    /// <summary>The deadline <paramref name="timeout"/> from now on <paramref name="time"/>.</summary>
    public static DateTime Deadline(this TimeProvider time, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(time);
        return time.GetUtcNow().UtcDateTime + timeout;
    }
}
