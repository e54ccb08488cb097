using System.Collections.Immutable;

namespace Geo.Core.Versioning;

/// <summary>One region's share of a counter: both parts only grow, so merging by max is safe.</summary>
public readonly record struct CounterComponent(long Increments, long Decrements)
{
    /// <summary>Net contribution of this region.</summary>
    public long Value => Increments - Decrements;

    /// <summary>Per-part max.</summary>
    public static CounterComponent Merge(CounterComponent a, CounterComponent b)
        => new(Math.Max(a.Increments, b.Increments), Math.Max(a.Decrements, b.Decrements));
}

/// <summary>
/// A conflict-free PN counter: every region grows only its own component; the value is the sum;
/// replicas merge per region by max.
/// </summary>
public sealed record PnCounter(ImmutableSortedDictionary<string, CounterComponent> Components)
{
    /// <summary>The zero counter.</summary>
    public static PnCounter Empty { get; } = new(ImmutableSortedDictionary.Create<string, CounterComponent>(StringComparer.Ordinal));

    /// <summary>Sum over regions.</summary>
    public long Value => Components.Values.Sum(c => c.Value);

    /// <summary>Adds <paramref name="delta"/> to <paramref name="region"/>'s own component.</summary>
    public PnCounter Add(string region, long delta)
    {
        ArgumentException.ThrowIfNullOrEmpty(region);
        var current = Components.GetValueOrDefault(region);
        var next = delta >= 0
            ? current with { Increments = checked(current.Increments + delta) }
            : current with { Decrements = checked(current.Decrements - delta) };
        return new PnCounter(Components.SetItem(region, next));
    }

    /// <summary>Per-region max merge: commutative, associative, idempotent.</summary>
    public static PnCounter Merge(PnCounter a, PnCounter b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var merged = a.Components.ToBuilder();
        foreach (var (region, component) in b.Components)
        {
            merged[region] = merged.TryGetValue(region, out var mine) ? CounterComponent.Merge(mine, component) : component;
        }

        return new PnCounter(merged.ToImmutable());
    }

    public bool Equals(PnCounter? other)
        => other is not null && Components.Count == other.Components.Count
            && Components.All(kv => other.Components.TryGetValue(kv.Key, out var c) && c == kv.Value);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var (k, v) in Components)
        {
            hash.Add(k, StringComparer.Ordinal);
            hash.Add(v);
        }

        return hash.ToHashCode();
    }
}
