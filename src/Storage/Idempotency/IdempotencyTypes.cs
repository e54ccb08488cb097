namespace Geo.Storage;

/// <summary>How <see cref="ShardStore.BeginIdempotentAsync"/> classified a request.</summary>
public enum IdempotencyOutcome
{
    /// <summary>First use of the key: the request is claimed; run it and complete it with the claim.</summary>
    New,

    /// <summary>Same key and payload already completed: return the stored response.</summary>
    Replay,

    /// <summary>Same key, different payload (HTTP 422).</summary>
    Mismatch,

    /// <summary>Same key still being processed by another request (HTTP 409).</summary>
    InFlight,
}

/// <summary>A stored response to replay.</summary>
/// <param name="Status">HTTP status code.</param>
/// <param name="Body">Response body text, or null for none.</param>
/// <param name="Headers">Response headers worth replaying (e.g. <c>ETag</c>, <c>Location</c>).</param>
public sealed record IdempotentResponse(int Status, string? Body, IReadOnlyDictionary<string, string> Headers);

/// <summary>Proof that this request owns an in-flight idempotency record; only the holder can complete or abandon it.</summary>
public sealed record IdempotencyClaim(string UserId, string Key, Guid Token);

/// <summary>The answer of <see cref="ShardStore.BeginIdempotentAsync"/>.</summary>
/// <param name="Outcome">What to do with the request.</param>
/// <param name="Claim">Set when <paramref name="Outcome"/> is <see cref="IdempotencyOutcome.New"/>.</param>
/// <param name="Response">Set when <paramref name="Outcome"/> is <see cref="IdempotencyOutcome.Replay"/>.</param>
public sealed record IdempotencyBegin(IdempotencyOutcome Outcome, IdempotencyClaim? Claim, IdempotentResponse? Response);

/// <summary>
/// Completes an idempotency claim inside a write's transaction: <paramref name="Respond"/> turns the write's result
/// into the response to store, so the response commits atomically with the row and its change-log entry.
/// </summary>
public sealed record IdempotencyContext<TResult>(IdempotencyClaim Claim, Func<TResult, IdempotentResponse> Respond);
