namespace Geo.RegionService.Counters;

internal sealed record CounterView(long Value);

/// <summary>The body of a counter increment: a signed 64-bit amount (not <c>long.MinValue</c>).</summary>
internal sealed record CounterIncrement(long Delta);
