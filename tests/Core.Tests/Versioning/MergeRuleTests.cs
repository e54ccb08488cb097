using System.Collections.Immutable;
using CsCheck;
using Geo.Core.Versioning;

namespace Geo.Core.Tests.Versioning;

public class MergeRuleTests
{
    // A version identifies one write, so the body is a function of it (two writes never share a version).
    private static readonly Gen<DocumentRegister> Registers =
        Gen.Select(DataVersionTests.Versions, Gen.Bool, (v, deleted) => new DocumentRegister(v, deleted, deleted ? null : $"{{\"v\":\"{v}\"}}"));

    private static readonly string[] RegionIds = ["us-east", "us-west", "eu-west"];

    // A counter replica state: any per-region components; increments and decrements only grow.
    private static readonly Gen<PnCounter> Counters =
        Gen.Select(Gen.Long[0, 1_000], Gen.Long[0, 1_000]).Array[0, 3].Select(parts =>
        {
            var builder = ImmutableSortedDictionary.CreateBuilder<string, CounterComponent>(StringComparer.Ordinal);
            for (var i = 0; i < parts.Length; i++)
            {
                builder[RegionIds[i]] = new CounterComponent(parts[i].Item1, parts[i].Item2);
            }

            return new PnCounter(builder.ToImmutable());
        });

    [Fact]
    public void Document_merge_is_commutative_associative_and_idempotent()
        => AssertSemilattice(Registers, (a, b) => DocumentRegister.Merge(a, b)!);

    [Fact]
    public void Counter_merge_is_commutative_associative_and_idempotent()
        => AssertSemilattice(Counters, PnCounter.Merge);

    [Fact]
    public void Broken_merge_rules_are_caught_by_the_same_properties()
    {
        // "The incoming value always wins" is what naive replication does; it must fail the laws.
        Assert.ThrowsAny<Exception>(() => AssertSemilattice(Registers, (stored, incoming) => incoming));
        // Summing components instead of taking the max double-counts a redelivered batch.
        Assert.ThrowsAny<Exception>(() => AssertSemilattice(Counters, (a, b) =>
            new PnCounter(b.Components.Aggregate(a.Components, (acc, kv) =>
                acc.SetItem(kv.Key, acc.TryGetValue(kv.Key, out var c) ? new CounterComponent(c.Increments + kv.Value.Increments, c.Decrements + kv.Value.Decrements) : kv.Value)))));
    }

    [Fact]
    public void Any_delivery_order_with_duplicates_converges_to_the_newest_write()
    {
        Gen.Select(Registers.Array[1, 30], Gen.Int).Sample((writes, seed) =>
        {
            var newest = writes.MaxBy(w => w.Version)!;
            var random = new Random(seed);
            for (var replica = 0; replica < 3; replica++)
            {
                // Every write delivered at least once, some twice or thrice, in a shuffled order.
                var deliveries = writes.SelectMany(w => Enumerable.Repeat(w, random.Next(1, 4))).OrderBy(_ => random.Next()).ToArray();
                DocumentRegister? state = null;
                foreach (var write in deliveries)
                {
                    state = DocumentRegister.Merge(state, write);
                }

                if (state != newest)
                {
                    return false;
                }
            }

            return true;
        });
    }

    [Fact]
    public void Counters_converge_to_the_sum_of_all_increments_under_any_delivery_order()
    {
        // Each region applies its own deltas locally and ships its state after every increment; peers merge in any order.
        Gen.Select(Gen.Select(Gen.Int[0, 2], Gen.Long[-50, 50]).Array[1, 40], Gen.Int).Sample((increments, seed) =>
        {
            var local = RegionIds.ToDictionary(r => r, _ => PnCounter.Empty);
            var shipped = new List<PnCounter>();
            foreach (var (region, delta) in increments)
            {
                var id = RegionIds[region];
                local[id] = local[id].Add(id, delta);
                shipped.Add(local[id]);
            }

            var expected = increments.Sum(i => i.Item2);
            var random = new Random(seed);
            var replica = PnCounter.Empty;
            foreach (var state in shipped.Concat(shipped.Where(_ => random.Next(3) == 0)).OrderBy(_ => random.Next()))
            {
                replica = PnCounter.Merge(replica, state);
            }

            return replica.Value == expected;
        });
    }

    [Fact]
    public void A_tombstone_competes_by_version_like_any_write()
    {
        var hlc = new Geo.Core.Clock.HlcTimestamp(1_000 << 16);
        var update = new DocumentRegister(new DataVersion(hlc, "eu-central"), false, "{}");
        var delete = new DocumentRegister(new DataVersion(hlc, "eu-west"), true, null);

        // Same clock reading, origin breaks the tie; both replicas pick the same survivor whichever arrives first.
        Assert.Same(DocumentRegister.Merge(update, delete), DocumentRegister.Merge(delete, update));
        Assert.True(DocumentRegister.Merge(update, delete)!.Deleted);
    }

    private static void AssertSemilattice<T>(Gen<T> gen, Func<T, T, T> merge)
    {
        Gen.Select(gen, gen, gen).Sample((a, b, c) =>
            Equals(merge(a, b), merge(b, a))
            && Equals(merge(merge(a, b), c), merge(a, merge(b, c)))
            && Equals(merge(a, a), a)
            && Equals(merge(merge(a, b), b), merge(a, b)));
    }
}
