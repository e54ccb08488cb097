using System.Text.Json;
using Geo.RegionService.Admission;
using Geo.RegionService.Api;
using Geo.RegionService.Api.OpenApi;
using Geo.RegionService.Idempotency;
using Geo.RegionService.Sharding;
using Geo.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Counters;

/// <summary>Increment and read a user's counters (docs/api.md, "Counters").</summary>
internal sealed class CounterEndpoints(ShardRouter router, IdempotentWrites writes)
{
    /// <summary>Maps the counter operations on the <c>/v1/users</c> group; the checks run in this order, then admission.</summary>
    public static void Map(IEndpointRouteBuilder users)
    {
        var api = users.ServiceProvider.GetRequiredService<CounterEndpoints>();
        users.MapPost("/{userId}/counters/{name}", (HttpContext http, string userId, string name, CancellationToken ct) => api.IncrementAsync(http, userId, name, ct))
            .WithContract(ApiContract.IncrementCounter, "Add a signed amount to a counter; answers the new value")
            .Accepts<CounterIncrement>("application/json").Produces<CounterView>() // a stored response: see StoredResult
            .Check(CheckName).Check(RequestChecks.JsonBody).Check(ReadDelta).Admit();
        users.MapGet("/{userId}/counters/{name}", (HttpContext http, string userId, string name, CancellationToken ct) => api.GetAsync(userId, name, ct))
            .WithContract(ApiContract.GetCounter, "Read a counter (0 when never incremented)")
            .Check(CheckName).Admit();
    }

    public async Task<Results<StoredResult, ProblemHttpResult>> IncrementAsync(HttpContext http, string userId, string name, CancellationToken ct)
    {
        var delta = http.Features.GetRequiredFeature<CounterIncrement>().Delta;
        try
        {
            return await writes.WriteAsync<long>(http, AdmittedUser.Of(http), RequestJson.Of(http),
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

    public async Task<Results<Ok<CounterView>, ProblemHttpResult>> GetAsync(string userId, string name, CancellationToken ct)
    {
        var store = router.ForRead(userId);
        return store is null ? RegionProblems.NoShardMap() : TypedResults.Ok(new CounterView(await store.GetCounterAsync(userId, name, ct)));
    }

    private static ProblemHttpResult? CheckName(HttpContext http) => RequestRules.CheckName("counter name", RequestChecks.Route(http, "name"));

    /// <summary>The body's <c>delta</c>: a whole number in the signed 64-bit range but not its minimum; kept as <see cref="CounterIncrement"/>.</summary>
    private static ProblemHttpResult? ReadDelta(HttpContext http)
    {
        try
        {
            using var document = JsonDocument.Parse(RequestJson.Of(http));
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("delta", out var d)
                || d.ValueKind != JsonValueKind.Number
                || !d.TryGetInt64(out var delta)
                || delta == long.MinValue)
            {
                return RegionProblems.InvalidRequest("Expected {\"delta\": N} with N a whole number (64-bit).");
            }

            http.Features.Set(new CounterIncrement(delta));
            return null;
        }
        catch (JsonException ex)
        {
            return RegionProblems.MalformedJson(ex.Message);
        }
    }
}
