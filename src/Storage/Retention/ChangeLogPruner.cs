namespace Geo.Storage.Retention;

/// <summary>What one pruning pass removed from one shard's change log.</summary>
/// <param name="Prefix">Entries up to the lowest checkpoint of every peer (the whole prefix every region acknowledged).</param>
/// <param name="ByReplicaSet">Entries above it that every region of their user's replica set acknowledged.</param>
public sealed record ChangeLogPrunePass(int Prefix, int ByReplicaSet);

/// <summary>
/// Prunes one shard's change log per replica set (docs/architecture.md §8): an entry goes once every peer region that
/// holds its user acknowledged it; a region outside the user's replica set never holds it back (an eu outage does not
/// stop pruning of us users' changes on a us shard). The prefix every peer acknowledged goes in batches first; above it,
/// up to the highest checkpoint, entries are looked at page by page (at most <c>maxPagesPerPass</c> pages per pass, from
/// a cursor that wraps), each user's replica set found once per page. An entry whose user the caller cannot place
/// (not in the local directory yet) stays. One pruner per shard; not thread-safe.
/// </summary>
/// <param name="store">The shard.</param>
/// <param name="pageSize">Entries per DELETE and per page of candidates.</param>
/// <param name="maxPagesPerPass">Most candidate pages (and prefix batches) per pass.</param>
public sealed class ChangeLogPruner(ShardStore store, int pageSize = 1000, int maxPagesPerPass = 20)
{
    private long _cursor;

    /// <summary>One pass.</summary>
    /// <param name="acknowledged">Per peer region: its checkpoint of this shard's stream (everything up to it is applied there).</param>
    /// <param name="replicaPeers">The peer regions holding a user (its replica set without this region); null when unknown.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<ChangeLogPrunePass> PruneAsync(IReadOnlyDictionary<string, long> acknowledged,
        Func<string, CancellationToken, ValueTask<IReadOnlyCollection<string>?>> replicaPeers, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(acknowledged);
        ArgumentNullException.ThrowIfNull(replicaPeers);
        if (acknowledged.Count == 0)
        {
            return new ChangeLogPrunePass(0, 0);
        }

        var everyone = acknowledged.Values.Min();
        var anyone = acknowledged.Values.Max();
        var prefix = 0;
        for (var i = 0; everyone > 0 && i < maxPagesPerPass; i++)
        {
            var removed = await store.PruneChangeLogAsync(everyone, pageSize, ct);
            prefix += removed;
            if (removed < pageSize)
            {
                break;
            }
        }

        var byReplicaSet = 0;
        var end = false;
        _cursor = Math.Max(_cursor, everyone);
        for (var page = 0; page < maxPagesPerPass && !end; page++)
        {
            var candidates = await store.ReadPruneCandidatesAsync(_cursor, anyone, pageSize, ct);
            if (candidates.Count == 0)
            {
                end = true;
                break;
            }

            var upto = new Dictionary<string, long>(StringComparer.Ordinal);
            var prunable = new List<long>();
            foreach (var (seq, userId) in candidates)
            {
                if (!upto.TryGetValue(userId, out var through))
                {
                    through = await ReplicaSetAcknowledgedAsync(userId);
                    upto[userId] = through;
                }

                if (seq <= through)
                {
                    prunable.Add(seq);
                }
            }

            byReplicaSet += await store.DeleteChangesAsync(prunable, ct);
            _cursor = candidates[^1].Seq;
            end = candidates.Count < pageSize || _cursor >= anyone;
        }

        if (end)
        {
            _cursor = 0; // The walk reached the highest checkpoint: the next pass starts over above the common prefix.
        }

        return new ChangeLogPrunePass(prefix, byReplicaSet);

        async Task<long> ReplicaSetAcknowledgedAsync(string userId)
        {
            if (await replicaPeers(userId, ct) is not { } peers)
            {
                return 0;
            }

            var through = long.MaxValue; // No peer holds the user: nobody to wait for.
            foreach (var peer in peers)
            {
                through = Math.Min(through, acknowledged.GetValueOrDefault(peer));
            }

            return through;
        }
    }
}
