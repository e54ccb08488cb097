using Dapper;
using Npgsql;

namespace Geo.Storage;

// Replication checkpoints: per (peer, stream), the last sequence applied (receiver side, in the apply's transaction) or
// acknowledged (sender side).
public sealed partial class ShardStore
{
    private const string GetCheckpointSql = "SELECT last_seq FROM replication_checkpoints WHERE peer = @Peer AND stream = @Stream";

    // Checkpoints only move forward: a late, smaller acknowledgement must not rewind them.
    private const string SetCheckpointSql = """
        INSERT INTO replication_checkpoints AS c (peer, stream, last_seq, updated_at) VALUES (@Peer, @Stream, @LastSeq, @Now)
        ON CONFLICT (peer, stream) DO UPDATE SET last_seq = greatest(c.last_seq, excluded.last_seq), updated_at = excluded.updated_at
        """;

    // Sent in front of a statement in the same round trip (one implicit transaction): that transaction only commits without the flush.
    private const string AsyncCommitSql = "SELECT set_config('synchronous_commit', 'off', true)";

    /// <summary>The last sequence recorded for (<paramref name="peer"/>, <paramref name="stream"/>); 0 when none.</summary>
    public async Task<long> GetCheckpointAsync(string peer, string stream, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(GetCheckpointSql, new { Peer = peer, Stream = stream }, cancellationToken: ct)) ?? 0;
    }

    /// <summary>
    /// Records a sender's checkpoint; never moves an existing one backwards. It commits without waiting for the WAL to
    /// reach disk (<c>synchronous_commit</c> off for this one transaction): a checkpoint that a database crash loses is
    /// an older one, from which the sender sends again, and the receiver skips what it applied already (applying is
    /// idempotent). Nothing that must hold after a crash follows from it before a durable commit: the next durable commit
    /// on the shard (a write, a prune that read this checkpoint) flushes the log up to and past it.
    /// </summary>
    public async Task SetCheckpointAsync(ReplicationCheckpoint checkpoint, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var batch = new NpgsqlBatch(connection) { BatchCommands = { new(AsyncCommitSql), CheckpointCommand(checkpoint) } };
        await batch.ExecuteNonQueryAsync(ct);
    }

    private NpgsqlBatchCommand CheckpointCommand(ReplicationCheckpoint checkpoint) => new(SetCheckpointSql)
    {
        Parameters =
        {
            new NpgsqlParameter<string>("Peer", checkpoint.Peer), new NpgsqlParameter<string>("Stream", checkpoint.Stream),
            new NpgsqlParameter<long>("LastSeq", checkpoint.LastSeq), new NpgsqlParameter<DateTimeOffset>("Now", _time.GetUtcNow()),
        },
    };
}
