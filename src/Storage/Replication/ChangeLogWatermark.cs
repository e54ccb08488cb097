using Dapper;
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
/// <item>once a later snapshot's <c>xmin</c> reaches <c>N</c>, every transaction with a smaller id has ended: seqs up to
/// <c>M</c> are final. A row committed by then is visible to every later statement; a gap is an abort.</item>
/// </list>
/// The cost: a wait for the transactions running at step 2 (milliseconds for the write path's short transactions),
/// three small statements per refresh and one transaction id. docs/decisions.md has the choice and its failure modes.
/// </summary>
public static class ChangeLogWatermark
{
    private const string ObserveSql = """
        SELECT coalesce(pg_sequence_last_value('change_log_seq_seq'), 0);
        SELECT set_config('synchronous_commit', 'off', true), pg_current_xact_id()::text::bigint;
        """;

    private const string XminSql = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

    /// <summary>A drawn sequence value and the transaction-id horizon that makes it stable.</summary>
    /// <param name="Drawn">The sequence's last value when observed.</param>
    /// <param name="Horizon">Every seq up to <paramref name="Drawn"/> is final once a snapshot's xmin is at least this.</param>
    public readonly record struct Observation(long Drawn, long Horizon);

    /// <summary>Steps 1 and 2 in one round trip (a batch: one implicit transaction, committed when it returns).</summary>
    public static async Task<Observation> ObserveAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        long drawn, horizon;
        await using (var multi = await connection.QueryMultipleAsync(new CommandDefinition(ObserveSql, cancellationToken: ct)))
        {
            drawn = await multi.ReadSingleAsync<long>();
            horizon = (await multi.ReadSingleAsync<(string Setting, long Xid)>()).Xid;
        }

        return new Observation(drawn, horizon);
    }

    /// <summary>Whether <paramref name="observation"/> is stable now (one small statement, after the observing transaction committed).</summary>
    public static async Task<bool> IsStableAsync(NpgsqlConnection connection, Observation observation, CancellationToken ct)
        => await connection.ExecuteScalarAsync<long>(new CommandDefinition(XminSql, cancellationToken: ct)) >= observation.Horizon;

    /// <summary>
    /// The current stable position: observes, then waits (polling every millisecond, at most <paramref name="maxWait"/>)
    /// until the transactions running at the observation ended. Returns null when they did not end in time (a long
    /// writer, or one idle in a transaction, holds the position back; the caller tries again later).
    /// Call outside a REPEATABLE READ transaction: the polls need fresh snapshots.
    /// </summary>
    public static async Task<long?> StablePositionAsync(NpgsqlConnection connection, TimeSpan maxWait, CancellationToken ct)
    {
        var observation = await ObserveAsync(connection, ct);
        var deadline = DateTime.UtcNow + maxWait;
        while (!await IsStableAsync(connection, observation, ct))
        {
            if (DateTime.UtcNow >= deadline)
            {
                return null;
            }

            await Task.Delay(1, ct);
        }

        return observation.Drawn;
    }
}
