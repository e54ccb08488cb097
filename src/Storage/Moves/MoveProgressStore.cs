using Dapper;
using Npgsql;

namespace Geo.Storage.Moves;

/// <summary>
/// A move's durable progress in its source shard's <c>shard_move_progress</c> row (migration
/// <c>0002_bucket_fences.sql</c>): the copy watermark, counts, timings, the pause and the verification, so
/// <c>geoctl shards apply</c> resumes where it stopped. The directory's move record holds the phase.
/// </summary>
/// <param name="source">The move's source shard.</param>
public sealed class MoveProgressStore(NpgsqlDataSource source)
{
    private const string ProgressColumns = """
        move_id AS MoveId, step AS Step, copy_seq AS CopySeq, caught_up_seq AS CaughtUpSeq, rows_copied AS RowsCopied, changes_applied AS ChangesApplied,
        fenced_at AS FencedAt, flipped_at AS FlippedAt, pause_ms AS PauseMs, rows_cleaned AS RowsCleaned, verified AS Verified, completed_at AS CompletedAt,
        source_shard AS Source, target_shard AS Target, buckets AS Buckets
        """;

    /// <summary>Creates the move's row (step <c>begun</c>) unless it exists.</summary>
    public async Task EnsureAsync(string moveId, string region, string from, string to, int[] buckets, CancellationToken ct)
    {
        await using var connection = await source.OpenConnectionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO shard_move_progress (move_id, region, source_shard, target_shard, buckets, step, updated_at)
            VALUES (@MoveId, @Region, @From, @To, @Buckets, 'begun', now()) ON CONFLICT (move_id) DO NOTHING
            """, new { MoveId = moveId, Region = region, From = from, To = to, Buckets = buckets }, cancellationToken: ct));
    }

    /// <summary>The move's row (it must exist).</summary>
    public async Task<MoveProgress> ReadAsync(string moveId, CancellationToken ct)
    {
        await using var connection = await source.OpenConnectionAsync(ct);
        return await connection.QuerySingleAsync<MoveProgress>(new CommandDefinition(
            $"SELECT {ProgressColumns} FROM shard_move_progress WHERE move_id = @MoveId", new { MoveId = moveId }, cancellationToken: ct));
    }

    /// <summary>Every move whose source is this shard, oldest change first.</summary>
    public async Task<IReadOnlyList<MoveProgress>> ListAsync(CancellationToken ct)
    {
        await using var connection = await source.OpenConnectionAsync(ct);
        return [.. await connection.QueryAsync<MoveProgress>(new CommandDefinition($"SELECT {ProgressColumns} FROM shard_move_progress ORDER BY updated_at", cancellationToken: ct))];
    }

    /// <summary>The copy is done: its change-log position is the first catch-up watermark.</summary>
    public Task CopiedAsync(string moveId, long seq, long rows, CancellationToken ct) =>
        UpdateAsync(moveId, "step = 'copied', copy_seq = @Seq, caught_up_seq = @Seq, rows_copied = @Rows", new { Seq = seq, Rows = rows }, ct);

    /// <summary>Catch-up reached <paramref name="after"/>, having applied <paramref name="count"/> more changes.</summary>
    public Task CaughtUpAsync(string moveId, long after, long count, CancellationToken ct) =>
        UpdateAsync(moveId, "caught_up_seq = @After, changes_applied = changes_applied + @Count", new { After = after, Count = count }, ct);

    /// <summary>The fences start now (the wall-clock start of the pause when a rerun resumes a fenced move).</summary>
    public Task FencingAsync(string moveId, DateTimeOffset now, CancellationToken ct) =>
        UpdateAsync(moveId, "step = 'fencing', fenced_at = @Now", new { Now = now }, ct);

    /// <summary>
    /// The map flipped: the pause is the run's own measure of the fenced window, or, when <paramref name="resumed"/>,
    /// the wall clock since <c>fenced_at</c>.
    /// </summary>
    public Task FlippedAsync(string moveId, DateTimeOffset now, bool resumed, double windowMs, CancellationToken ct) =>
        UpdateAsync(moveId, """
            step = 'flipped', flipped_at = @Now,
            pause_ms = CASE WHEN @Resumed OR fenced_at IS NULL THEN extract(epoch FROM (@Now - coalesce(fenced_at, @Now))) * 1000 ELSE @Window END
            """, new { Now = now, Resumed = resumed, Window = windowMs }, ct);

    /// <summary>The verification's verdict (<c>ok: …</c> or <c>failed: …</c>).</summary>
    public Task VerifiedAsync(string moveId, string verdict, CancellationToken ct) =>
        UpdateAsync(moveId, "verified = @Verified", new { Verified = verdict }, ct);

    /// <summary>The source's rows of the buckets are deleted.</summary>
    public Task CleanedAsync(string moveId, long cleaned, CancellationToken ct) =>
        UpdateAsync(moveId, "step = 'cleaned', rows_cleaned = @Cleaned", new { Cleaned = cleaned }, ct);

    /// <summary>The move is complete in the directory.</summary>
    public Task CompletedAsync(string moveId, DateTimeOffset now, CancellationToken ct) =>
        UpdateAsync(moveId, "step = 'completed', completed_at = coalesce(completed_at, @Now)", new { Now = now }, ct);

    /// <summary>The move was cancelled before its flip.</summary>
    public Task CancelledAsync(string moveId, CancellationToken ct) => UpdateAsync(moveId, "step = 'cancelled'", new { }, ct);

    private async Task UpdateAsync(string moveId, string set, object args, CancellationToken ct)
    {
        var parameters = new DynamicParameters(args);
        parameters.Add("MoveId", moveId);
        await using var connection = await source.OpenConnectionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition($"UPDATE shard_move_progress SET {set}, updated_at = now() WHERE move_id = @MoveId", parameters, cancellationToken: ct));
    }
}

/// <summary>A move's row in its source shard's <c>shard_move_progress</c> (settable properties: Dapper binds arrays only to those).</summary>
public sealed record MoveProgress
{
    public string Source { get; init; } = "";
    public string Target { get; init; } = "";
    public int[] Buckets { get; init; } = [];
    public string MoveId { get; init; } = "";
    public string Step { get; init; } = "";
    public long? CopySeq { get; init; }
    public long? CaughtUpSeq { get; init; }
    public long RowsCopied { get; init; }
    public long ChangesApplied { get; init; }
    public DateTime? FencedAt { get; init; }
    public DateTime? FlippedAt { get; init; }
    public double? PauseMs { get; init; }
    public long? RowsCleaned { get; init; }
    public string? Verified { get; init; }
    public DateTime? CompletedAt { get; init; }
}
