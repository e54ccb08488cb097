using System.Globalization;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Geo.Storage.Retention;
using Geo.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Geo.Storage.Tests;

/// <summary>
/// Bounded growth under retention: a long run of writes on one shard — keyed (idempotent) puts, plain puts, deletes and
/// concurrent replicated writes that land in the conflict log — with a short retention (60 s) on a fake clock (100
/// writes per simulated second), retention and change-log pruning every 10 simulated seconds as the job would run them.
/// The sizes of the idempotency, conflict, tombstone and change-log tables must stay under a bound set by the rate and
/// the retention, whatever the number of writes. GEO_RETENTION_WRITES sets the count (default 20,000; the figures in
/// docs/operations.md come from 100,000); GEO_RETENTION_OFF names one job to switch off (idempotency, conflicts,
/// tombstones, change_log), the negative control: its table then grows with the run and the test fails.
/// </summary>
public sealed class BoundedGrowthTests(PostgresServer server)
{
    private const int WritesPerSecond = 100;
    private const int PassEverySeconds = 10;
    private static readonly TimeSpan Retention = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Table_sizes_stay_bounded_over_a_long_run_with_short_retention()
    {
        var writes = int.TryParse(Environment.GetEnvironmentVariable("GEO_RETENTION_WRITES"), CultureInfo.InvariantCulture, out var n) ? n : 20_000;
        var off = Environment.GetEnvironmentVariable("GEO_RETENTION_OFF") ?? string.Empty;
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        await using var db = new ShardDatabase(server);
        await db.InitializeAsync();
        var store = db.Store("us-east", time);
        var options = new RetentionOptions
        {
            ConflictRetention = Retention,
            TombstoneGrace = Retention,
            BatchSize = 1000,
            MaxBatchesPerPass = 20,
            Idempotency = off != "idempotency",
            Conflicts = off != "conflicts",
            Tombstones = off != "tombstones",
        };
        var retention = new ShardRetention(store, options, time);
        var pruner = new ChangeLogPruner(store);
        var users = Enumerable.Range(0, 200).Select(_ => ShardDatabase.NewUserId()).ToArray();
        var remoteCounter = 0;
        var peak = new RetainedSizes(0, 0, 0, 0, 0);
        var started = DateTime.UtcNow;

        for (var second = 0; second * WritesPerSecond < writes; second++)
        {
            var from = second * WritesPerSecond;
            await Parallel.ForEachAsync(Enumerable.Range(from, Math.Min(WritesPerSecond, writes - from)), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = Ct },
                async (i, ct) =>
                {
                    // Four writes in a row to one user and key (keyed put, put, delete, replicated put), then the next user.
                    var user = users[(i / 4) % users.Length];
                    var key = $"k{(i / (4 * users.Length)) % 50}";
                    switch (i % 4)
                    {
                        case 0:
                            var begin = await store.BeginIdempotentAsync(user, $"idem-{i}", [(byte)i], Retention, ct);
                            await store.PutDocumentAsync(user, "docs", key, """{"v":0}""",
                                idempotency: new(begin.Claim!, _ => new IdempotentResponse(200, null, new Dictionary<string, string>())), ct: ct);
                            break;
                        case 1:
                            await store.PutDocumentAsync(user, "docs", key, """{"v":1}""", ct: ct);
                            break;
                        case 2:
                            await store.DeleteDocumentAsync(user, "docs", key, ct: ct);
                            break;
                        default:
                            // us-west wrote the same key without seeing ours (no previous version), a little later: it wins,
                            // and ours goes to the conflict log.
                            var hlc = HlcTimestamp.From(time.GetUtcNow().ToUnixTimeMilliseconds() + 1, Interlocked.Increment(ref remoteCounter) & 0xFFFF);
                            await store.ApplyRemoteAsync([new ShardChange
                            {
                                Kind = ChangeKind.Document, Bucket = Buckets.Of(user), UserId = user, Collection = "docs", Key = key,
                                Body = """{"v":3}""", Version = new DataVersion(hlc, "us-west"), Origin = "us-west",
                            }], ct: ct);
                            break;
                    }
                });
            time.Advance(TimeSpan.FromSeconds(1));

            if ((second + 1) % PassEverySeconds == 0)
            {
                var sizes = await store.RetainedSizesAsync(Ct); // the peak: just before a pass
                peak = new RetainedSizes(Math.Max(peak.Idempotency, sizes.Idempotency), Math.Max(peak.Conflicts, sizes.Conflicts),
                    Math.Max(peak.Tombstones, sizes.Tombstones), Math.Max(peak.ChangeLog, sizes.ChangeLog), Math.Max(peak.Documents, sizes.Documents));
                if (off != "change_log")
                {
                    // us-west acknowledged everything stable; eu-west holds no user of this shard and acknowledged nothing.
                    var stable = await store.StableChangePositionAsync(TimeSpan.FromSeconds(10), Ct) ?? 0;
                    await pruner.PruneAsync(new Dictionary<string, long> { ["us-west"] = stable, ["eu-west"] = 0 },
                        (_, _) => ValueTask.FromResult<IReadOnlyCollection<string>?>(["us-west"]), Ct);
                }

                await retention.RunOnceAsync(ct: Ct);
            }
        }

        var final = await store.RetainedSizesAsync(Ct);
        var figures = $"{writes} writes in {(DateTime.UtcNow - started).TotalSeconds:0} s (retention {Retention.TotalSeconds} s, pass every {PassEverySeconds} s of fake time, off: '{off}'): " +
            $"peak idempotency {peak.Idempotency}, conflicts {peak.Conflicts}, tombstones {peak.Tombstones}, change_log {peak.ChangeLog}, documents {peak.Documents}; " +
            $"final idempotency {final.Idempotency}, conflicts {final.Conflicts}, tombstones {final.Tombstones}, change_log {final.ChangeLog}";
        TestContext.Current.SendDiagnosticMessage(figures);
        Console.WriteLine(figures);

        // A quarter of the writes make each kind of row; they live for the retention plus up to two pass intervals.
        var perKind = WritesPerSecond / 4 * (Retention.TotalSeconds + (2 * PassEverySeconds));
        Assert.True(peak.Idempotency <= perKind, figures);
        Assert.True(peak.Conflicts <= perKind, figures);
        Assert.True(peak.Tombstones <= perKind, figures);
        // Every write appends one entry; pruned at every pass.
        Assert.True(peak.ChangeLog <= WritesPerSecond * 2 * PassEverySeconds, figures);
    }
}
