using Geo.Core.Topology;
using Geo.RegionService.Admission;
using Geo.RegionService.Api;
using Geo.RegionService.Api.OpenApi;
using Geo.RegionService.Directory;
using Geo.RegionService.Idempotency;
using Geo.RegionService.Sharding;
using Geo.ServiceDefaults.Auth;
using Geo.Storage;
using Geo.Storage.Caching;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Geo.RegionService.Users;

/// <summary>Create, read and erase a user (docs/api.md, "Users").</summary>
internal sealed class UserEndpoints(
    GeoTopology topology,
    IOptions<RegionServiceOptions> options,
    IUserDirectory directory,
    ShardRouter router,
    DocumentCache cache,
    TimeProvider time,
    GeoAccess access,
    ILogger<UserEndpoints> logger)
{
    private readonly RegionServiceOptions _options = options.Value;

    private string Region => _options.Region;

    /// <summary>Maps the user operations on the <c>/v1/users</c> group.</summary>
    public static void Map(IEndpointRouteBuilder users)
    {
        var api = users.ServiceProvider.GetRequiredService<UserEndpoints>();
        users.MapPost("/", (HttpContext http, CancellationToken ct) => api.CreateAsync(http, ct))
            .WithContract(ApiContract.CreateUser, "Create a user with a residency (and optionally a home region)")
            .Accepts<CreateUserRequest>("application/json");
        users.MapGet("/{userId}", (HttpContext http, string userId) => api.Get(http))
            .WithContract(ApiContract.GetUser, "Read a user's placement")
            .Admit();
        users.MapDelete("/{userId}", (HttpContext http, string userId, CancellationToken ct) => api.EraseAsync(http, userId, ct))
            .WithContract(ApiContract.EraseUser, "Erase a user and all their data in every region")
            .Admit();
    }

    public async Task<Results<Created<UserView>, ProblemHttpResult, EmptyHttpResult>> CreateAsync(HttpContext http, CancellationToken ct)
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
        if (!await access.AuthorizeAsync(http, GeoOperation.CreateUser, new(null, residency)))
        {
            return TypedResults.Empty;
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
            var edge = http.Request.Headers[Contracts.GeoHeaders.EdgeRegion].ToString();
            home = topology.PickHomeRegion(topology.Regions.ContainsKey(edge) ? edge : Region, residency);
        }

        var idempotencyKey = IdempotencyKey.Of(http.Request);
        if (IdempotencyKey.Check(idempotencyKey) is { } badKey)
        {
            return badKey;
        }

        // A create has no user to scope its key to: the key lives in this region's directory, committed with the entry.
        var key = idempotencyKey.Length == 0 ? null : new CreateKey(idempotencyKey, IdempotencyKey.RequestHash(http.Request, json), _options.IdempotencyTtl);
        var user = new UserRecord(Guid.CreateVersion7(time.GetUtcNow()).ToString(), residency, home);
        bool replayed;
        try
        {
            (user, replayed) = await directory.CreateUserAsync(user, key, ct);
        }
        catch (DirectoryUnavailableException ex)
        {
            return logger.DirectoryDown(ex);
        }
        catch (CreateKeyReusedException)
        {
            return RegionProblems.IdempotencyKeyReused();
        }

        ApiHeaders.SetUser(http, user.HomeRegion, Region);
        if (replayed)
        {
            http.Response.Headers[StoredResult.ReplayedHeader] = "true";
        }

        return TypedResults.Created($"/v1/users/{user.UserId}", UserView.Of(user, topology));
    }

    public Ok<UserView> Get(HttpContext http) => TypedResults.Ok(UserView.Of(AdmittedUser.Of(http), topology));

    /// <summary>
    /// Erasure (docs/architecture.md, "The path of one erase"): the directory's erase marker first — once it is durable
    /// the erase is acknowledged and will complete — then this region's shard at once (so racing writes here are
    /// refused from now on) and the cache. The Replicator's erase worker completes the shard removal in every region of
    /// the residency, this one included when the step below fails. An erased user answers 404 afterwards, a repeated
    /// DELETE too; an Idempotency-Key is accepted but not stored (the erase is idempotent by itself, and a stored key
    /// would outlive the user).
    /// </summary>
    public async Task<Results<NoContent, ProblemHttpResult>> EraseAsync(HttpContext http, string userId, CancellationToken ct)
    {
        var user = AdmittedUser.Of(http);
        if (IdempotencyKey.Check(IdempotencyKey.Of(http.Request)) is { } badKey)
        {
            return badKey;
        }

        Core.Versioning.DataVersion? erase;
        try
        {
            erase = await directory.EraseUserAsync(user.UserId, ct);
        }
        catch (DirectoryUnavailableException ex)
        {
            return logger.DirectoryDown(ex); // Nothing was recorded: the client retries.
        }

        if (erase is not { } version)
        {
            return RegionProblems.UserNotFound(userId);
        }

        await EraseLocallyAsync(user.UserId, version, ct);
        return TypedResults.NoContent();
    }

    private async Task EraseLocallyAsync(string id, Core.Versioning.DataVersion at, CancellationToken ct)
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
            RegionLog.LocalEraseDeferred(logger, ex.GetType().Name);
        }

        await cache.ForgetUserAsync(id, CancellationToken.None);
    }
}
