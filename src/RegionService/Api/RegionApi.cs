using System.Security.Cryptography;
using System.Text;
using Geo.Core.Topology;
using Geo.Storage.Caching;
using Geo.RegionService.Directory;
using Geo.RegionService.Sharding;
using Geo.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Geo.RegionService.Api;

/// <summary>The handlers of docs/architecture.md §4; each validates, admits by residency, routes to the user's shard.</summary>
internal sealed partial class RegionApi(
    GeoTopology topology,
    IOptions<RegionServiceOptions> options,
    IUserDirectory directory,
    ShardRouter router,
    DocumentCache cache,
    TimeProvider time,
    ServiceDefaults.Auth.GeoAccess access,
    ILogger<RegionApi> logger)
{
    public const string RegionHeader = "Geo-Region";
    public const string HomeRegionHeader = "Geo-Home-Region";
    public const string FailoverHeader = "Geo-Failover";
    public const string EdgeRegionHeader = "Geo-Edge-Region";
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    private readonly RegionServiceOptions _options = options.Value;

    private string Region => _options.Region;

    // ---- users -------------------------------------------------------------------------------------------

    public async Task<IResult> CreateUserAsync(HttpContext http, CancellationToken ct)
    {
        var (json, problem) = await RequestRules.ReadJsonBodyAsync(http.Request, _options.MaxBodyBytes, ct);
        if (problem is not null)
        {
            return problem;
        }

        CreateUserRequest? request;
        try
        {
            request = System.Text.Json.JsonSerializer.Deserialize<CreateUserRequest>(json!, System.Text.Json.JsonSerializerOptions.Web);
        }
        catch (System.Text.Json.JsonException ex)
        {
            return RegionProblems.MalformedJson($"Expected {{\"residency\": \"...\", \"homeRegion\": \"...\"?}}: {ex.Message}");
        }

        if (request?.Residency is not { Length: > 0 } residency)
        {
            return RegionProblems.InvalidRequest("\"residency\" is required, e.g. {\"residency\": \"eu\"}.");
        }

        if (!topology.IsKnownResidency(residency))
        {
            return RegionProblems.UnknownResidency(residency, [GeoTopology.GlobalResidency, .. topology.Jurisdictions]);
        }

        if (!topology.IsAllowed(residency, Region))
        {
            return RegionProblems.RegionNotAllowed(Region, residency, topology.AllowedRegions(residency));
        }

        // A service token creates users only in its jurisdictions (the scope was checked before the body was read).
        if (!await access.AuthorizeAsync(http, ServiceDefaults.Auth.GeoOperation.CreateUser, new(null, residency)))
        {
            return Results.Empty;
        }

        string home;
        if (request.HomeRegion is { Length: > 0 } requested)
        {
            if (!topology.IsAllowed(residency, requested))
            {
                return RegionProblems.HomeRegionNotAllowed(requested, residency);
            }

            home = requested;
        }
        else
        {
            // The nearest allowed region to the edge that took the request (the edge says which; else this region).
            var edge = http.Request.Headers[EdgeRegionHeader].ToString();
            home = topology.PickHomeRegion(topology.Regions.ContainsKey(edge) ? edge : Region, residency);
        }

        var idempotencyKey = http.Request.Headers[IdempotencyKeyHeader].ToString();
        if (RequestRules.CheckIdempotencyKey(idempotencyKey) is { } badKey)
        {
            return badKey;
        }

        // A create has no user to scope its key to: the key lives in this region's directory, committed with the entry.
        var key = idempotencyKey.Length == 0 ? null : new CreateKey(idempotencyKey, RequestHash(http.Request, json), _options.IdempotencyTtl);
        var user = new UserRecord(Guid.CreateVersion7(time.GetUtcNow()).ToString(), residency, home);
        bool replayed;
        try
        {
            (user, replayed) = await directory.CreateUserAsync(user, key, ct);
        }
        catch (DirectoryUnavailableException ex)
        {
            return DirectoryDown(ex);
        }
        catch (CreateKeyReusedException)
        {
            return RegionProblems.IdempotencyKeyReused();
        }

        SetUserHeaders(http, user);
        if (replayed)
        {
            http.Response.Headers[StoredResult.ReplayedHeader] = "true";
        }

        return TypedResults.Created($"/v1/users/{user.UserId}", ToView(user));
    }

    public async Task<IResult> GetUserAsync(HttpContext http, string userId, CancellationToken ct)
    {
        var (user, problem) = await AdmitAsync(http, userId, ct);
        return problem ?? TypedResults.Ok(ToView(user!));
    }

    /// <summary>
    /// Erasure (docs/architecture.md, "The path of one erase"): the directory's erase marker first — once it is durable
    /// the erase is acknowledged and will complete — then this region's shard at once (so racing writes here are
    /// refused from now on) and the cache. The Replicator's erase worker completes the shard removal in every region of
    /// the residency, this one included when the step below fails. An erased user answers 404 afterwards, a repeated
    /// DELETE too; an Idempotency-Key is accepted but not stored (the erase is idempotent by itself, and a stored key
    /// would outlive the user).
    /// </summary>
    public async Task<IResult> EraseUserAsync(HttpContext http, string userId, CancellationToken ct)
    {
        var (user, problem) = await AdmitAsync(http, userId, ct);
        if (problem is not null)
        {
            return problem;
        }

        if (RequestRules.CheckIdempotencyKey(http.Request.Headers[IdempotencyKeyHeader].ToString()) is { } badKey)
        {
            return badKey;
        }

        Core.Versioning.DataVersion? erase;
        try
        {
            erase = await directory.EraseUserAsync(user!.UserId, ct);
        }
        catch (DirectoryUnavailableException ex)
        {
            return DirectoryDown(ex); // Nothing was recorded: the client retries.
        }

        if (erase is not { } version)
        {
            return RegionProblems.UserNotFound(userId);
        }

        await eraseLocally(user.UserId, version);
        return TypedResults.NoContent();

        async Task eraseLocally(string id, Core.Versioning.DataVersion at)
        {
            try
            {
                var route = await router.ForWriteAsync(id, ct);
                if (route.Store is { } store)
                {
                    await store.EraseUserAsync(id, at, CancellationToken.None);
                }
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or BucketFencedException or TimeoutException or InvalidOperationException)
            {
                // Acknowledged regardless: the marker is durable and the erase worker finishes this shard.
                LogLocalEraseDeferred(logger, ex.GetType().Name);
            }

            await cache.ForgetUserAsync(id, CancellationToken.None);
        }
    }

    // ---- documents ---------------------------------------------------------------------------------------

    public async Task<IResult> PutDocumentAsync(HttpContext http, string userId, string collection, string key, CancellationToken ct)
    {
        if (CheckDocumentAddress(collection, key) is { } invalid)
        {
            return invalid;
        }

        var (condition, conditionProblem) = RequestRules.ReadPreconditions(http.Request);
        if (conditionProblem is not null)
        {
            return conditionProblem;
        }

        var (body, bodyProblem) = await RequestRules.ReadJsonBodyAsync(http.Request, _options.MaxBodyBytes, ct);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        var (user, problem) = await AdmitAsync(http, userId, ct);
        if (problem is not null)
        {
            return problem;
        }

        return await WriteAsync<DocumentWriteResult>(http, user!, body,
            (store, idem) => store.PutDocumentAsync(userId, collection, key, body!, condition, idem, ct),
            result => result.Outcome switch
            {
                DocumentWriteOutcome.PreconditionFailed => StoredResult.Problem(RegionProblems.PreconditionFailed(result.Version?.ToETag())),
                _ => StoredResult.Json(
                    result.Outcome == DocumentWriteOutcome.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK,
                    new DocumentWritten(collection, key, result.Version!.Value.ToToken()),
                    new Dictionary<string, string> { ["ETag"] = result.Version!.Value.ToETag() }),
            },
            result => result.Version is { } v && result.Outcome != DocumentWriteOutcome.PreconditionFailed
                ? cache.InvalidateAsync(userId, collection, key, v, ct)
                : Task.CompletedTask,
            ct);
    }

    public async Task<IResult> GetDocumentAsync(HttpContext http, string userId, string collection, string key, CancellationToken ct)
    {
        if (CheckDocumentAddress(collection, key) is { } invalid)
        {
            return invalid;
        }

        var (_, problem) = await AdmitAsync(http, userId, ct);
        if (problem is not null)
        {
            return problem;
        }

        var (kind, document) = await cache.GetAsync(userId, collection, key, ct);
        if (kind == CachedKind.Miss)
        {
            var store = router.ForRead(userId);
            if (store is null)
            {
                return NoShardMap();
            }

            document = await store.GetDocumentAsync(userId, collection, key, ct);
            await cache.PopulateAsync(userId, collection, key, document, ct);
        }

        if (document is null)
        {
            return RegionProblems.DocumentNotFound(collection, key);
        }

        http.Response.Headers.ETag = document.Version.ToETag();
        return TypedResults.Text(document.Body, "application/json; charset=utf-8");
    }

    public async Task<IResult> DeleteDocumentAsync(HttpContext http, string userId, string collection, string key, CancellationToken ct)
    {
        if (CheckDocumentAddress(collection, key) is { } invalid)
        {
            return invalid;
        }

        var (condition, conditionProblem) = RequestRules.ReadPreconditions(http.Request);
        if (conditionProblem is not null)
        {
            return conditionProblem;
        }

        var (user, problem) = await AdmitAsync(http, userId, ct);
        if (problem is not null)
        {
            return problem;
        }

        return await WriteAsync<DocumentWriteResult>(http, user!, body: null,
            (store, idem) => store.DeleteDocumentAsync(userId, collection, key, condition, idem, ct),
            result => result.Outcome switch
            {
                DocumentWriteOutcome.PreconditionFailed => StoredResult.Problem(RegionProblems.PreconditionFailed(result.Version?.ToETag())),
                DocumentWriteOutcome.NotFound => StoredResult.Problem(RegionProblems.DocumentNotFound(collection, key)),
                _ => StoredResult.Empty(StatusCodes.Status204NoContent),
            },
            result => result.Version is { } v && result.Outcome != DocumentWriteOutcome.PreconditionFailed
                ? cache.InvalidateAsync(userId, collection, key, v, ct)
                : Task.CompletedTask,
            ct);
    }

    public async Task<IResult> ListDocumentsAsync(HttpContext http, string userId, string collection, int? limit, string? after, CancellationToken ct)
    {
        if (RequestRules.CheckName("collection", collection) is { } invalid)
        {
            return invalid;
        }

        var take = limit ?? 100;
        if (take < 1 || take > _options.MaxPageSize)
        {
            return RegionProblems.InvalidRequest($"limit must be between 1 and {_options.MaxPageSize}.");
        }

        if (after is not null && RequestRules.CheckKey(after) is { } badAfter)
        {
            return badAfter;
        }

        var (_, problem) = await AdmitAsync(http, userId, ct);
        if (problem is not null)
        {
            return problem;
        }

        var store = router.ForRead(userId);
        if (store is null)
        {
            return NoShardMap();
        }

        var page = await store.ListDocumentsAsync(userId, collection, take, after, _options.MaxPageBytes, ct);
        return TypedResults.Ok(new DocumentListView(
            page.Items.Select(d => new DocumentItemView(d.Key, d.Version.ToToken(), System.Text.Json.JsonDocument.Parse(d.Body).RootElement)).ToArray(),
            page.Next));
    }

    // ---- counters ----------------------------------------------------------------------------------------

    public async Task<IResult> IncrementCounterAsync(HttpContext http, string userId, string name, CancellationToken ct)
    {
        if (RequestRules.CheckName("counter name", name) is { } invalid)
        {
            return invalid;
        }

        var (json, bodyProblem) = await RequestRules.ReadJsonBodyAsync(http.Request, _options.MaxBodyBytes, ct);
        if (bodyProblem is not null)
        {
            return bodyProblem;
        }

        long delta;
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json!);
            if (document.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object
                || !document.RootElement.TryGetProperty("delta", out var d)
                || d.ValueKind != System.Text.Json.JsonValueKind.Number
                || !d.TryGetInt64(out delta)
                || delta == long.MinValue)
            {
                return RegionProblems.InvalidRequest("Expected {\"delta\": N} with N a whole number (64-bit).");
            }
        }
        catch (System.Text.Json.JsonException ex)
        {
            return RegionProblems.MalformedJson(ex.Message);
        }

        var (user, problem) = await AdmitAsync(http, userId, ct);
        if (problem is not null)
        {
            return problem;
        }

        try
        {
            return await WriteAsync<long>(http, user!, json,
                (store, idem) => store.IncrementCounterAsync(userId, name, delta, idem, ct),
                value => StoredResult.Json(StatusCodes.Status200OK, new CounterView(value)),
                _ => Task.CompletedTask,
                ct);
        }
        catch (CounterOverflowException)
        {
            return RegionProblems.CounterOverflow(name, delta);
        }
    }

    public async Task<IResult> GetCounterAsync(HttpContext http, string userId, string name, CancellationToken ct)
    {
        if (RequestRules.CheckName("counter name", name) is { } invalid)
        {
            return invalid;
        }

        var (_, problem) = await AdmitAsync(http, userId, ct);
        if (problem is not null)
        {
            return problem;
        }

        var store = router.ForRead(userId);
        return store is null ? NoShardMap() : TypedResults.Ok(new CounterView(await store.GetCounterAsync(userId, name, ct)));
    }

    // ---- shared steps ------------------------------------------------------------------------------------

    /// <summary>Looks the user up and refuses (421) a user whose residency excludes this region.</summary>
    private async Task<(UserRecord? User, IResult? Problem)> AdmitAsync(HttpContext http, string userId, CancellationToken ct)
    {
        if (!RequestRules.IsUserId(userId))
        {
            return (null, RegionProblems.UserNotFound(userId));
        }

        UserRecord? user;
        try
        {
            user = await directory.GetUserAsync(userId, ct);
        }
        catch (DirectoryUnavailableException ex)
        {
            return (null, DirectoryDown(ex));
        }

        if (user is null)
        {
            return (null, RegionProblems.UserNotFound(userId));
        }

        SetUserHeaders(http, user);
        return topology.IsAllowed(user.Residency, Region)
            ? (user, null)
            : (null, RegionProblems.RegionNotAllowed(Region, user.Residency, topology.AllowedRegions(user.Residency)));
    }

    /// <summary>
    /// Runs a write on the user's shard, with the Idempotency-Key protocol of §7 when the header is present:
    /// replay (same key and payload), 422 (other payload), 409 (still in flight); the response is stored in the
    /// write's own transaction.
    /// </summary>
    private async Task<IResult> WriteAsync<T>(
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
                return ShardMoving();
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
            return ShardMoving();
        }
    }

    private async Task<IResult> WriteOnShardAsync<T>(
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
            return route.Failure == WriteRouteFailure.Fenced ? ShardMoving() : NoShardMap();
        }

        var idempotencyKey = http.Request.Headers[IdempotencyKeyHeader].ToString();
        if (idempotencyKey.Length == 0)
        {
            var plain = await write(store, null);
            await afterCommit(plain);
            return new StoredResult(respond(plain), replayed: false);
        }

        if (RequestRules.CheckIdempotencyKey(idempotencyKey) is { } badKey)
        {
            return badKey;
        }

        var begin = await store.BeginIdempotentAsync(user.UserId, idempotencyKey, RequestHash(http.Request, body), _options.IdempotencyTtl, ct);
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

    private static byte[] RequestHash(HttpRequest request, string? body)
        => SHA256.HashData(Encoding.UTF8.GetBytes($"{request.Method}\n{request.Path}\n{request.Headers.IfMatch}\n{body}" + (request.Headers.IfNoneMatch.Count > 0 ? $"\n{request.Headers.IfNoneMatch}" : "")));

    private static ProblemHttpResult? CheckDocumentAddress(string collection, string key)
        => RequestRules.CheckName("collection", collection) ?? RequestRules.CheckKey(key);

    private void SetUserHeaders(HttpContext http, UserRecord user)
    {
        http.Response.Headers[HomeRegionHeader] = user.HomeRegion;
        if (!string.Equals(user.HomeRegion, Region, StringComparison.Ordinal))
        {
            http.Response.Headers[FailoverHeader] = "true";
        }
    }

    private IResult DirectoryDown(DirectoryUnavailableException ex)
    {
        LogDirectoryUnavailable(logger, ex.Message);
        return RegionProblems.Unavailable("directory-unavailable", "The user directory did not answer in time; retry shortly.");
    }

    private static IResult ShardMoving()
        => RegionProblems.Unavailable("shard-moving", "The user's data is being moved between shards; retry in a moment.");

    private static IResult NoShardMap()
        => RegionProblems.Unavailable("shard-map-unavailable", "This region has not loaded its shard map yet; retry shortly.");

    private UserView ToView(UserRecord user) => new(user.UserId, user.Residency, user.HomeRegion, topology.AllowedRegions(user.Residency));

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Erase recorded in the directory; this region's shard step failed ({Reason}) and is left to the erase worker")]
    private static partial void LogLocalEraseDeferred(ILogger logger, string reason);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Directory unavailable: {Reason}")]
    private static partial void LogDirectoryUnavailable(ILogger logger, string reason);
}
