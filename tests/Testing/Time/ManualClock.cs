namespace Geo.Testing.Time;

/// <summary>
/// A <see cref="TimeProvider"/> whose wall clock tests set freely, backwards included
/// (FakeTimeProvider refuses to go back, and clocks in production do go back).
/// </summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    /// <summary>Moves the wall clock by <paramref name="delta"/>, which may be negative.</summary>
    public void Advance(TimeSpan delta) => Interlocked.Add(ref _ticks, delta.Ticks);

    /// <summary>Sets the wall clock to <paramref name="now"/>, earlier or later.</summary>
    public void Set(DateTimeOffset now) => Interlocked.Exchange(ref _ticks, now.UtcTicks);
}
