using Geo.RegionService.Api;
using Geo.RegionService.Directory;
using Geo.RegionService.Sharding;
using Geo.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Geo.RegionService.Idempotency;

/// <summary>
/// Runs a write on the user's shard, with the Idempotency-Key protocol of §7 when the header is present:
/// replay (same key and payload), 422 (other payload), 409 (still in flight); the response is stored in the
/// write's own transaction. A write refused by a move's fence waits for the next shard map and is routed once more.
/// </summary>
internal sealed class IdempotentWrites(ShardRouter router, IOptions<RegionServiceOptions> options)
{
    private readonly TimeSpan _ttl = options.Value.IdempotencyTtl;

    /// <summary>The write, its stored response, and what runs once it committed (cache invalidation).</summary>
    public async Task<Results<StoredResult, ProblemHttpResult>> WriteAsync<T>(
        HttpContext http,
        UserRecord user,
        string? body,
        Func<ShardStore, IdempotencyContext<T>?, Task<T>> write,
        Func<T, IdempotentResponse> respond,
        Func<T, Task> afterCommit,
        CancellationToken ct)
    {
        var route = await router.ForWriteAsync(user.UserId, ct);
        try
        {
            return await WriteOnShardAsync(http, user, body, route, write, respond, afterCommit, ct);
        }
        catch (UserErasedException)
        {
            // The shard holds the user's erase marker (this lookup came from a cache older than the erase): refused.
            return RegionProblems.UserNotFound(user.UserId);
        }
        catch (BucketFencedException)
        {
            // The map this write was routed with is older than a move's fence: the shard refused it inside its
            // transaction (nothing was written). Wait for the next map, then route once more (waiting for the flip).
            if (!await router.WaitForNewerMapAsync(route.Epoch, ct))
            {
                return RegionProblems.ShardMoving();
            }
        }

        try
        {
            return await WriteOnShardAsync(http, user, body, await router.ForWriteAsync(user.UserId, ct), write, respond, afterCommit, ct);
        }
        catch (UserErasedException)
        {
            return RegionProblems.UserNotFound(user.UserId);
        }
        catch (BucketFencedException)
        {
            return RegionProblems.ShardMoving();
        }
    }

    private async Task<Results<StoredResult, ProblemHttpResult>> WriteOnShardAsync<T>(
        HttpContext http,
        UserRecord user,
        string? body,
        WriteRoute route,
        Func<ShardStore, IdempotencyContext<T>?, Task<T>> write,
        Func<T, IdempotentResponse> respond,
        Func<T, Task> afterCommit,
        CancellationToken ct)
    {
        if (route.Store is not { } store)
        {
            return route.Failure == WriteRouteFailure.Fenced ? RegionProblems.ShardMoving() : RegionProblems.NoShardMap();
        }

        var key = IdempotencyKey.Of(http.Request);
        if (key.Length == 0)
        {
            var plain = await write(store, null);
            await afterCommit(plain);
            return new StoredResult(respond(plain), replayed: false);
        }

        if (IdempotencyKey.Check(key) is { } badKey)
        {
            return badKey;
        }

        var begin = await store.BeginIdempotentAsync(user.UserId, key, IdempotencyKey.RequestHash(http.Request, body), _ttl, ct);
        switch (begin.Outcome)
        {
            case IdempotencyOutcome.Replay:
                return new StoredResult(begin.Response!, replayed: true);
            case IdempotencyOutcome.Mismatch:
                return RegionProblems.IdempotencyKeyReused();
            case IdempotencyOutcome.InFlight:
                return RegionProblems.IdempotencyInFlight();
        }

        T result;
        try
        {
            result = await write(store, new IdempotencyContext<T>(begin.Claim!, respond));
        }
        catch
        {
            // Nothing committed: release the key so the client's retry runs instead of waiting out the lease.
            await store.AbandonIdempotentAsync(begin.Claim!, CancellationToken.None);
            throw;
        }

        await afterCommit(result);
        return new StoredResult(respond(result), replayed: false);
    }
}
