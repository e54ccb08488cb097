using CsCheck;
using Geo.Core.Clock;
using Geo.Testing.Time;

namespace Geo.Core.Tests.Clock;

public class HybridLogicalClockTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Readings_strictly_increase_whatever_the_wall_clock_does()
    {
        // Each step moves the wall clock by -5 s .. +5 s (backwards jumps included) and takes 1..50 readings.
        var steps = Gen.Select(Gen.Int[-5_000, 5_000], Gen.Int[1, 50]).Array[1, 60];
        steps.Sample(plan =>
        {
            var time = new ManualClock(Start);
            var clock = new HybridLogicalClock(time, TimeSpan.FromSeconds(1));
            var last = HlcTimestamp.Zero;
            foreach (var (jumpMs, readings) in plan)
            {
                time.Advance(TimeSpan.FromMilliseconds(jumpMs));
                for (var i = 0; i < readings; i++)
                {
                    var now = clock.Now();
                    if (now <= last)
                    {
                        return false;
                    }

                    last = now;
                }
            }

            return true;
        });
    }

    [Fact]
    public void A_backwards_clock_keeps_the_last_millisecond_and_counts()
    {
        var time = new ManualClock(Start);
        var clock = new HybridLogicalClock(time, TimeSpan.FromSeconds(1));
        var first = clock.Now();
        time.Set(Start.AddSeconds(-30));
        var second = clock.Now();

        Assert.Equal(first.Milliseconds, second.Milliseconds);
        Assert.Equal(first.Counter + 1, second.Counter);
    }

    [Fact]
    public void Counter_overflow_borrows_the_next_millisecond()
    {
        var time = new ManualClock(Start);
        var clock = new HybridLogicalClock(time, TimeSpan.FromSeconds(1));
        var first = clock.Now();
        HlcTimestamp last = first;
        for (var i = 0; i < HlcTimestamp.MaxCounter + 1; i++)
        {
            last = clock.Now();
        }

        Assert.Equal(first.Milliseconds + 1, last.Milliseconds);
        Assert.Equal(0, last.Counter);
    }

    [Fact]
    public void Observing_a_remote_reading_puts_every_later_local_reading_after_it()
    {
        Gen.Select(Gen.Int[0, 900], Gen.Int[0, HlcTimestamp.MaxCounter]).Sample((aheadMs, counter) =>
        {
            var time = new ManualClock(Start);
            var clock = new HybridLogicalClock(time, TimeSpan.FromSeconds(1));
            var remote = HlcTimestamp.From(Start.ToUnixTimeMilliseconds() + aheadMs, counter);
            return clock.TryObserve(remote) && clock.Now() > remote;
        });
    }

    [Fact]
    public void A_remote_reading_beyond_the_skew_bound_is_refused_and_changes_nothing()
    {
        var time = new ManualClock(Start);
        var clock = new HybridLogicalClock(time, TimeSpan.FromSeconds(1));
        var before = clock.Now();
        var farFuture = HlcTimestamp.From(Start.ToUnixTimeMilliseconds() + 1_001, 0);

        Assert.True(clock.IsBeyondSkew(farFuture));
        Assert.False(clock.TryObserve(farFuture));
        var after = clock.Now();
        Assert.True(after < farFuture);
        Assert.Equal(before.Milliseconds, after.Milliseconds);
    }

    [Fact]
    public void Concurrent_readings_are_unique()
    {
        var clock = new HybridLogicalClock(new ManualClock(Start), TimeSpan.FromSeconds(1));
        var readings = new long[4 * 20_000];
        Parallel.For(0, 4, t =>
        {
            for (var i = 0; i < 20_000; i++)
            {
                readings[(t * 20_000) + i] = clock.Now().Value;
            }
        });

        Assert.Equal(readings.Length, readings.Distinct().Count());
    }

    [Fact]
    public void Packing_round_trips_and_orders_like_the_pair()
    {
        Gen.Select(Gen.Long[0, HlcTimestamp.MaxMilliseconds], Gen.Int[0, HlcTimestamp.MaxCounter], Gen.Long[0, HlcTimestamp.MaxMilliseconds], Gen.Int[0, HlcTimestamp.MaxCounter])
            .Sample((ms1, c1, ms2, c2) =>
            {
                var a = HlcTimestamp.From(ms1, c1);
                var b = HlcTimestamp.From(ms2, c2);
                return a.Milliseconds == ms1 && a.Counter == c1
                    && Math.Sign(a.CompareTo(b)) == Math.Sign((ms1, c1).CompareTo((ms2, c2)));
            });
    }
}
