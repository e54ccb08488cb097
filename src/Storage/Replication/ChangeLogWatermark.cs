using Npgsql;

namespace Geo.Storage;

/// <summary>
/// The change log's stable position: the highest seq such that every transaction that drew a seq at or below it has
/// committed or aborted, so a reader that stops there never passes a seq whose row commits later. Writers append
/// concurrently (seq order is not commit order, and no lock orders them); readers find the position instead:
/// <list type="number">
/// <item>read the sequence's last value <c>M</c> (every seq up to it is drawn);</item>
/// <item>then take a transaction id <c>N</c> for the reader itself (a tiny transaction, committed without waiting for
/// the disk): a transaction that drew a seq up to <c>M</c> had its id before (the append assigns it first, see
/// <c>AppendChangeSql</c>), so its id is below <c>N</c>. A snapshot's <c>xmax</c> would not do: it is one past the
/// latest <em>completed</em> id, and a running transaction can hold a larger one;</item>
/// <item>once no transaction of this database with an id below <c>N</c> is running (a later snapshot's <c>xmin</c>
/// reached <c>N</c>, or every running id below it belongs to a session of another database), seqs up to <c>M</c> are
/// final. A row committed by then is visible to every later statement; a gap is an abort.</item>
/// </list>
/// The cost: a wait for the transactions running at step 2 (milliseconds for the write path's short transactions),
/// two small statements per refresh and one transaction id, and one statement (no id) when nothing new was drawn. docs/decisions.md has the choice and its failure modes.
/// </summary>
public static class ChangeLogWatermark
{
    // Steps 1 and 2 in one statement. The CTE is evaluated once, before the id is taken; the id is taken only when
    // something was drawn past what the caller already knows is stable (an idle log costs one read of the sequence).
    private const string ObserveSql = """
        WITH s AS MATERIALIZED (SELECT coalesce(pg_sequence_last_value('change_log_seq_seq'), 0) AS drawn)
        SELECT drawn, CASE WHEN drawn > $1 THEN pg_current_xact_id()::text::bigint END, set_config('synchronous_commit', 'off', true) FROM s
        """;

    // The common check: the snapshot's xmin passed the horizon, so every transaction with a smaller id ended.
    private const string XminSql = "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8";

    // The check after PreciseAfter: no transaction that may have appended to this database's log is still running with
    // an id below the horizon. Of the snapshot's running ids below it, only those pg_stat_activity places in another
    // database are left out (a session of another database cannot draw this one's sequence); an id it cannot place (a
    // prepared transaction, a backend that just ended, a session whose details the role may not see) counts as
    // running. Without it, any write transaction anywhere on the server (another region's shard on a shared server,
    // an operator's session) held every reader back. It reads pg_stat_activity, hence not from the first poll.
    private const string StableSql = """
        SELECT CASE WHEN pg_snapshot_xmin(s.snap) >= $1::text::xid8 THEN true
               ELSE NOT EXISTS (
                   SELECT 1 FROM pg_snapshot_xip(s.snap) AS x
                   WHERE x < $1::text::xid8
                     AND NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a
                                     WHERE a.backend_xid = (x::text::bigint % 4294967296)::text::xid
                                       AND a.datid IS NOT NULL AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())))
               END
        FROM (SELECT pg_current_snapshot() AS snap) AS s
        """;

    /// <summary>A drawn sequence value and the transaction-id horizon that makes it stable.</summary>
    /// <param name="Drawn">The sequence's last value when observed.</param>
    /// <param name="Horizon">Every seq up to <paramref name="Drawn"/> is final once a snapshot's xmin is at least this;
    /// null when nothing was drawn past the position the caller knew to be stable (nothing to wait for).</param>
    public readonly record struct Observation(long Drawn, long? Horizon);

    /// <summary>Steps 1 and 2 in one round trip (one statement: an implicit transaction, committed when it returns).</summary>
    /// <param name="connection">An open connection, outside a transaction.</param>
    /// <param name="knownStable">A position the caller already knows is stable; no transaction id is taken when nothing was drawn past it.</param>
    /// <param name="ct">Cancellation.</param>
    public static async Task<Observation> ObserveAsync(NpgsqlConnection connection, long knownStable, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(ObserveSql, connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = knownStable });
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new Observation(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetInt64(1));
    }

    /// <summary>How long a wait polls the snapshot's xmin alone before it also leaves out other databases' transactions.</summary>
    public static readonly TimeSpan PreciseAfter = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Whether <paramref name="observation"/> is stable now (one small statement, after the observing transaction
    /// committed): every transaction running at the observation has ended — with <paramref name="precise"/>, every
    /// one of this database (transactions of other databases on the server do not count).
    /// </summary>
    public static async Task<bool> IsStableAsync(NpgsqlConnection connection, Observation observation, CancellationToken ct, bool precise = true)
    {
        if (observation.Horizon is not { } horizon)
        {
            return true;
        }

        await using var command = new NpgsqlCommand(precise ? StableSql : XminSql, connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = horizon });
        return (bool)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// The current stable position: observes, then waits (polling every millisecond, at most <paramref name="maxWait"/>)
    /// until the transactions running at the observation ended. Returns null when they did not end in time (a long
    /// writer, or one idle in a transaction, holds the position back; the caller tries again later). When nothing was
    /// drawn past <paramref name="knownStable"/>, returns at once what was drawn (at most <paramref name="knownStable"/>).
    /// Call outside a REPEATABLE READ transaction: the polls need fresh snapshots.
    /// </summary>
    public static async Task<long?> StablePositionAsync(NpgsqlConnection connection, TimeSpan maxWait, CancellationToken ct, long knownStable = -1)
    {
        var observation = await ObserveAsync(connection, knownStable, ct);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (!await IsStableAsync(connection, observation, ct, precise: System.Diagnostics.Stopwatch.GetElapsedTime(started) >= PreciseAfter))
        {
            if (System.Diagnostics.Stopwatch.GetElapsedTime(started) >= maxWait)
            {
                return null;
            }

            await Task.Delay(1, ct);
        }

        return observation.Drawn;
    }
}
