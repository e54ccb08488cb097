using System.Diagnostics;
using System.Text.Json.Nodes;
using Geo.Testing.Faults;
using Geo.Testing.Time;

namespace Geo.Replicator.Tests;

/// <summary>
/// A receiver acknowledges a batch only after the batch's cache invalidations ended: an acknowledged change is never
/// served older from the peer region's cache. us-south's replicator runs with its Redis behind a proxy that holds the
/// invalidations; a write at us-east must be stored at us-south and still unacknowledged while they are held, and
/// acknowledged once they pass.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class CacheOrderTests(ReplicationCluster cluster)
{
    private static readonly string[] Us = ["us-east", "us-west", "us-south"];
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    // How long the test watches for a premature acknowledgement: several checkpoint writes of the sender (200 ms
    // apart), and well inside the Redis client's timeout (15 s here), after which a held invalidation fails (the cache
    // is best effort) and the acknowledgement goes.
    private static readonly TimeSpan Watch = TimeSpan.FromSeconds(1.5);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_batch_is_acknowledged_only_after_its_cache_invalidations()
    {
        var user = await cluster.CreateUserAsync("us-east", "us");
        await cluster.WaitForUsersAsync(Us, [user], Wait);
        var (settings, redis) = await SlowCacheSettingsAsync();
        try
        {
            await cluster.WithReplicatorAsync("us-south", settings, async held =>
            {
                var east = cluster["us-east"];
                var store = east.StoreOfUser(user);
                var shard = east.Stores.Single(s => ReferenceEquals(s.Value, store)).Key;
                var target = cluster["us-south"].StoreOfUser(user);

                // The first write opens the session and the receiver's Redis connection while the proxy passes.
                await store.PutDocumentAsync(user, "order", "warm-up", """{"v":0}""", ct: Ct);
                var warmUp = await SeqOfAsync(shard, "warm-up");
                await Eventually.UntilAsync(async () => await AcknowledgedAsync(shard) >= warmUp, Wait, "us-south did not acknowledge the warm-up write", Ct);

                redis.Mode = FaultMode.Hold;
                var written = await store.PutDocumentAsync(user, "order", "held", """{"v":1}""", ct: Ct);
                var seq = await SeqOfAsync(shard, "held");
                await Eventually.UntilAsync(async () => (await target.GetDocumentAsync(user, "order", "held", Ct))?.Version == written.Version, Wait, "the held write was not stored at us-south", Ct);

                // Stored and committed at us-south; its invalidation cannot reach Redis, so no acknowledgement may either.
                var watching = Stopwatch.StartNew();
                while (watching.Elapsed < Watch)
                {
                    Assert.True(await AcknowledgedAsync(shard) < seq, $"us-south acknowledged seq {seq} while its cache invalidation was held ({watching.ElapsedMilliseconds} ms after it was stored; proxy accepted {redis.Accepted}, open {redis.OpenConnections})\n" + string.Join("\n", held.Logs.Where(l => !l.Contains("\"LogLevel\":\"Information\"", StringComparison.Ordinal)).TakeLast(20)));
                    await Task.Delay(50, Ct);
                }

                redis.Mode = FaultMode.Pass;
                await Eventually.UntilAsync(async () => await AcknowledgedAsync(shard) >= seq, Wait, "us-south did not acknowledge the write once its invalidation passed", Ct);
            }, Ct);
        }
        finally
        {
            redis.Mode = FaultMode.Pass;
            await redis.DisposeAsync();
        }

        // us-east's sender checkpoint for us-south on the user's shard: written once us-south acknowledged.
        Task<long> AcknowledgedAsync(string shardId)
            => cluster["us-east"].ScalarAsync(shardId, $"SELECT coalesce(max(last_seq), 0) FROM replication_checkpoints WHERE peer = 'us-south' AND stream = '{shardId}'");

        // The change-log position of the user's write of key.
        Task<long> SeqOfAsync(string shardId, string key)
            => cluster["us-east"].ScalarAsync(shardId, $"SELECT max(seq) FROM change_log WHERE user_id = '{user}' AND collection = 'order' AND key = '{key}'");
    }

    /// <summary>us-south's replicator settings with its Redis behind a proxy (a topology copy), with Redis client timeouts long enough to hold.</summary>
    private async Task<(Dictionary<string, string> Settings, FaultProxy Redis)> SlowCacheSettingsAsync()
    {
        var topology = JsonNode.Parse(await File.ReadAllTextAsync(cluster.TopologyPath, Ct))!;
        var region = topology["regions"]!["us-south"]!;
        var parts = region["redis"]!.GetValue<string>().Split(',');
        var proxy = FaultProxy.Start(int.Parse(parts[0].Split(':')[1], System.Globalization.CultureInfo.InvariantCulture));
        parts[0] = $"127.0.0.1:{proxy.Port}";
        region["redis"] = string.Join(',', parts) + ",asyncTimeout=15000,syncTimeout=15000";
        var path = Path.Combine(Path.GetDirectoryName(cluster.TopologyPath)!, "topology.held-cache.json");
        await File.WriteAllTextAsync(path, topology.ToJsonString(), Ct);
        var settings = cluster.ReplicatorSettings("us-south");
        settings["Geo:Topology"] = path;
        return (settings, proxy);
    }
}
