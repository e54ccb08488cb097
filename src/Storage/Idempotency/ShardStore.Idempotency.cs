using System.Text.Json;
using Dapper;
using Npgsql;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    /// <summary>An in-flight record older than this is taken as abandoned (its request died) and can be claimed again.</summary>
    public static readonly TimeSpan DefaultInFlightLease = TimeSpan.FromMinutes(1);

    private const string ClaimSql = """
        INSERT INTO idempotency AS i (user_id, key, request_hash, state, claim_token, created_at, expires_at)
        SELECT @UserId, @Key, @RequestHash, 'in_flight', @Token, @Now, @ExpiresAt
        WHERE NOT EXISTS (SELECT 1 FROM erased_users WHERE user_id = @UserId)
        ON CONFLICT (user_id, key) DO UPDATE
            SET request_hash = excluded.request_hash, state = 'in_flight', claim_token = excluded.claim_token,
                status = NULL, response_body = NULL, response_headers = NULL,
                created_at = excluded.created_at, expires_at = excluded.expires_at
            WHERE i.expires_at <= @Now OR (i.state = 'in_flight' AND i.created_at <= @StaleBefore)
        RETURNING claim_token
        """;

    private const string ReadIdempotencySql = """
        SELECT request_hash AS RequestHash, state AS State, status AS Status, response_body AS ResponseBody, response_headers::text AS ResponseHeaders
        FROM idempotency WHERE user_id = @UserId AND key = @Key
        """;

    private const string CompleteSql = """
        UPDATE idempotency SET state = 'done', status = @Status, response_body = @Body, response_headers = @Headers::jsonb
        WHERE user_id = @UserId AND key = @Key AND claim_token = @Token AND state = 'in_flight'
        """;

    private const string AbandonSql = "DELETE FROM idempotency WHERE user_id = @UserId AND key = @Key AND claim_token = @Token AND state = 'in_flight'";

    private const string PurgeIdempotencySql = "DELETE FROM idempotency WHERE expires_at <= @Now";

    /// <summary>
    /// Classifies a request carrying an <c>Idempotency-Key</c>. For a new key the record is inserted in flight and
    /// committed before this returns. Expired records count as absent.
    /// </summary>
    /// <param name="userId">Keys are scoped per user.</param>
    /// <param name="key">The client's idempotency key.</param>
    /// <param name="requestHash">A hash of what makes the request the same (method, path, body).</param>
    /// <param name="ttl">How long the completed record is kept (24 h by default in the API).</param>
    /// <param name="ct">Cancellation.</param>
    /// <param name="inFlightLease">How long an in-flight record blocks duplicates before it is presumed abandoned; <see cref="DefaultInFlightLease"/> when null.</param>
    public async Task<IdempotencyBegin> BeginIdempotentAsync(string userId, string key, byte[] requestHash, TimeSpan ttl, CancellationToken ct = default, TimeSpan? inFlightLease = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(requestHash);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        while (true)
        {
            var now = _time.GetUtcNow();
            var token = Guid.NewGuid();
            var claimed = await connection.QuerySingleOrDefaultAsync<Guid?>(new CommandDefinition(ClaimSql, new
            {
                UserId = userId,
                Key = key,
                RequestHash = requestHash,
                Token = token,
                Now = now,
                ExpiresAt = now + ttl,
                StaleBefore = now - (inFlightLease ?? DefaultInFlightLease),
            }, cancellationToken: ct));
            if (claimed == token)
            {
                return new IdempotencyBegin(IdempotencyOutcome.New, new IdempotencyClaim(userId, key, token), null);
            }

            var existing = await connection.QuerySingleOrDefaultAsync<IdempotencyRow>(new CommandDefinition(ReadIdempotencySql, new { UserId = userId, Key = key }, cancellationToken: ct));
            if (existing is null)
            {
                if ((await ErasedAmongAsync([userId], ct)).Count > 0)
                {
                    throw new UserErasedException(ShardId); // No key is stored for an erased user.
                }

                continue; // Abandoned between the two statements: claim again.
            }

            if (!existing.RequestHash.AsSpan().SequenceEqual(requestHash))
            {
                return new IdempotencyBegin(IdempotencyOutcome.Mismatch, null, null);
            }

            if (existing.State != "done")
            {
                return new IdempotencyBegin(IdempotencyOutcome.InFlight, null, null);
            }

            var headers = existing.ResponseHeaders is null
                ? new Dictionary<string, string>()
                : JsonSerializer.Deserialize<Dictionary<string, string>>(existing.ResponseHeaders) ?? [];
            return new IdempotencyBegin(IdempotencyOutcome.Replay, null, new IdempotentResponse(existing.Status ?? 0, existing.ResponseBody, headers));
        }
    }

    /// <summary>Releases a claim whose request failed, so a retry with the same key runs again. No effect on a completed record.</summary>
    public async Task AbandonIdempotentAsync(IdempotencyClaim claim, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(claim);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition(AbandonSql, new { claim.UserId, claim.Key, claim.Token }, cancellationToken: ct));
    }

    /// <summary>Deletes expired idempotency records; returns how many.</summary>
    public async Task<int> PurgeExpiredIdempotencyAsync(CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition(PurgeIdempotencySql, new { Now = _time.GetUtcNow() }, cancellationToken: ct));
    }

    /// <summary>Stores the response of a claimed request in the write's transaction; throws (rolling the write back) if the claim was lost.</summary>
    private static async Task CompleteIdempotencyAsync<TResult>(NpgsqlConnection connection, NpgsqlTransaction tx, string userId, IdempotencyContext<TResult>? idempotency, TResult result, CancellationToken ct)
    {
        if (idempotency is null)
        {
            return;
        }

        var claim = idempotency.Claim;
        if (claim.UserId != userId)
        {
            throw new ArgumentException($"The idempotency claim belongs to user {claim.UserId}, not {userId}.", nameof(idempotency));
        }

        var response = idempotency.Respond(result);
        var updated = await connection.ExecuteAsync(new CommandDefinition(CompleteSql, new
        {
            response.Status,
            response.Body,
            Headers = JsonSerializer.Serialize(response.Headers),
            claim.UserId,
            claim.Key,
            claim.Token,
        }, tx, cancellationToken: ct));
        if (updated != 1)
        {
            throw new IdempotencyClaimLostException(claim.Key);
        }
    }

    private sealed record IdempotencyRow(byte[] RequestHash, string State, int? Status, string? ResponseBody, string? ResponseHeaders);
}

/// <summary>
/// The idempotency claim expired or was taken over before the write committed; the write was rolled back.
/// </summary>
public sealed class IdempotencyClaimLostException(string key)
    : InvalidOperationException($"The claim on idempotency key '{key}' was lost before the write committed; the write was rolled back.");
