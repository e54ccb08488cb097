using Dapper;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Npgsql;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    private const string SelectComponentForUpdateSql = """
        SELECT incr AS Increments, decr AS Decrements, version_hlc AS VersionHlc, version_origin AS VersionOrigin
        FROM counters WHERE user_id = @UserId AND name = @Name AND region = @Region
        FOR UPDATE
        """;

    private const string InsertComponentSql = """
        INSERT INTO counters (user_id, name, region, bucket, incr, decr, version_hlc, version_origin, updated_at)
        VALUES (@UserId, @Name, @Region, @Bucket, @Increments, @Decrements, @VersionHlc, @VersionOrigin, @Now)
        ON CONFLICT (user_id, name, region) DO NOTHING
        """;

    private const string UpdateComponentSql = """
        UPDATE counters SET incr = @Increments, decr = @Decrements, version_hlc = @VersionHlc, version_origin = @VersionOrigin, updated_at = @Now
        WHERE user_id = @UserId AND name = @Name AND region = @Region
        """;

    // The exact sum (numeric: components from several regions may exceed 64 bits together), saturated to a bigint.
    private const string CounterValueSql = """
        SELECT greatest(least(coalesce(sum(incr), 0) - coalesce(sum(decr), 0), 9223372036854775807), -9223372036854775808)::bigint
        FROM counters WHERE user_id = @UserId AND name = @Name
        """;

    private const string CounterExactSql = "SELECT (coalesce(sum(incr), 0) - coalesce(sum(decr), 0))::numeric FROM counters WHERE user_id = @UserId AND name = @Name";

    /// <summary>
    /// Adds <paramref name="delta"/> (negative to subtract) to this region's component of a counter; returns the counter's
    /// value. Throws <see cref="CounterOverflowException"/>, with nothing written, when the component or the value this
    /// region sees would leave the 64-bit range.
    /// </summary>
    /// <param name="userId">Owner.</param>
    /// <param name="name">Counter name.</param>
    /// <param name="delta">Amount to add; any value but <see cref="long.MinValue"/>.</param>
    /// <param name="idempotency">When set, the response is stored with the write, atomically.</param>
    /// <param name="ct">Cancellation.</param>
    public async Task<long> IncrementCounterAsync(string userId, string name, long delta, IdempotencyContext<long>? idempotency = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfEqual(delta, long.MinValue);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockUserAsync(connection, tx, userId, exclusive: false, ct);
        await RequireNotErasedAsync(connection, tx, userId, ct);
        while (true)
        {
            var current = await LockComponentAsync(connection, tx, userId, name, RegionId, ct);
            var exact = await connection.ExecuteScalarAsync<decimal>(new CommandDefinition(CounterExactSql, new { UserId = userId, Name = name }, tx, cancellationToken: ct));
            var increments = (decimal)(current?.Increments ?? 0) + Math.Max(delta, 0);
            var decrements = (decimal)(current?.Decrements ?? 0) + Math.Max(-delta, 0);
            // Refused: a component past 64 bits, or a value pushed further out of range (after concurrent increments in
            // several regions the exact value may already be out of range; an increment back towards it is accepted).
            if (increments > long.MaxValue || decrements > long.MaxValue || (delta > 0 && exact + delta > long.MaxValue) || (delta < 0 && exact + delta < long.MinValue))
            {
                throw new CounterOverflowException(name, delta);
            }

            var version = NextVersion(current?.Version);
            var component = new CounterComponent((long)increments, (long)decrements, version.Hlc.Value, version.Origin);
            if (!await WriteComponentAsync(connection, tx, userId, name, RegionId, component, insert: current is null, ct))
            {
                continue; // A concurrent increment created the component first; lock it and add again.
            }

            await AppendChangesAsync(connection, tx, [LocalChange(ChangeKind.Counter, userId, version) with
            {
                CounterName = name,
                CounterRegion = RegionId,
                Increments = component.Increments,
                Decrements = component.Decrements,
            }], ct);
            var value = await connection.ExecuteScalarAsync<long>(new CommandDefinition(CounterValueSql, new { UserId = userId, Name = name }, tx, cancellationToken: ct));
            await CompleteIdempotencyAsync(connection, tx, userId, idempotency, value, ct);
            await tx.CommitAsync(ct);
            SignalCommitted();
            return value;
        }
    }

    /// <summary>
    /// The counter's value: the sum of every region's increments minus decrements; 0 for an unknown counter. When
    /// components accepted concurrently in several regions add up beyond 64 bits, the value saturates at
    /// <see cref="long.MaxValue"/> (or <see cref="long.MinValue"/>): a function of the components alone, so every region
    /// that holds the same components reads the same value.
    /// </summary>
    public async Task<long> GetCounterAsync(string userId, string name, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(CounterValueSql, new { UserId = userId, Name = name }, cancellationToken: ct));
    }

    private static Task<CounterComponent?> LockComponentAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, string name, string region, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<CounterComponent?>(new CommandDefinition(SelectComponentForUpdateSql, new { UserId = userId, Name = name, Region = region }, tx, cancellationToken: ct));

    /// <summary>Inserts or updates one component; false when an insert lost a race to a concurrent insert.</summary>
    private async Task<bool> WriteComponentAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, string name, string region, CounterComponent component, bool insert, CancellationToken ct)
    {
        var written = await connection.ExecuteAsync(new CommandDefinition(insert ? InsertComponentSql : UpdateComponentSql, new
        {
            UserId = userId,
            Name = name,
            Region = region,
            Bucket = Buckets.Of(userId),
            component.Increments,
            component.Decrements,
            component.VersionHlc,
            component.VersionOrigin,
            Now = _time.GetUtcNow(),
        }, tx, cancellationToken: ct));
        return written == 1;
    }

    private sealed record CounterComponent(long Increments, long Decrements, long VersionHlc, string VersionOrigin)
    {
        public DataVersion Version => new(new Core.Clock.HlcTimestamp(VersionHlc), VersionOrigin);
    }

    // A replicated counter component (see ApplyRemoteAsync): merged by max per region, refused for an erased user.
    private async Task<bool> ApplyCounterAsync(NpgsqlConnection connection, NpgsqlTransaction tx, ShardChange change, CancellationToken ct)
    {
        var name = change.CounterName ?? throw new ArgumentException("A counter change needs CounterName.", nameof(change));
        var region = change.CounterRegion ?? throw new ArgumentException("A counter change needs CounterRegion.", nameof(change));
        if (await EraseMarkerAsync(connection, tx, change.UserId, ct) != DataVersion.None)
        {
            return false; // The user was erased: an erase is final, whatever the component's version.
        }

        if (change.EraseEpoch is { } epoch)
        {
            // A sender of an older release counted on after an erase this shard has not seen: apply the erase, refuse the count.
            await ApplyEraseAsync(connection, tx, change.UserId, epoch, ct);
            return false;
        }

        while (true)
        {
            var local = await LockComponentAsync(connection, tx, change.UserId, name, region, ct);
            if (local is not null && change.Increments <= local.Increments && change.Decrements <= local.Decrements)
            {
                return false;
            }

            var merged = new CounterComponent(
                Math.Max(change.Increments, local?.Increments ?? 0),
                Math.Max(change.Decrements, local?.Decrements ?? 0),
                local is null ? change.Version.Hlc.Value : DataVersion.Max(local.Version, change.Version).Hlc.Value,
                local is null ? change.Version.Origin : DataVersion.Max(local.Version, change.Version).Origin);
            if (await WriteComponentAsync(connection, tx, change.UserId, name, region, merged, insert: local is null, ct))
            {
                return true;
            }
        }
    }
}

/// <summary>An increment refused because the counter (or this region's share of it) would leave the 64-bit range; nothing was written.</summary>
public sealed class CounterOverflowException(string name, long delta)
    : InvalidOperationException($"Adding {delta} to counter '{name}' would leave the range of a 64-bit integer.")
{
    /// <summary>The counter.</summary>
    public string Name { get; } = name;

    /// <summary>The refused amount.</summary>
    public long Delta { get; } = delta;
}
