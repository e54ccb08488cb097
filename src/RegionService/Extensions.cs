using Geo.ServiceDefaults.Telemetry;
using Geo.Core.Clock;
using Geo.Core.Topology;
using System.Text.Json;
using Geo.RegionService.Api;
using Geo.RegionService.Api.OpenApi;
using Geo.RegionService.Auth;
using Geo.RegionService.Directory;
using Geo.RegionService.Sharding;
using Geo.ServiceDefaults.Auth;
using Geo.ServiceDefaults.Resilience;
using Geo.ServiceDefaults.Shedding;
using Geo.ServiceDefaults.Tls;
using Geo.Core.Tls;
using Geo.Storage.Caching;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Polly.Registry;
using Scalar.AspNetCore;

namespace Geo.RegionService;

internal static class Extensions
{
    /// <summary>Registers the regional API: topology, shards, directory client, cache, idempotency, limits.</summary>
    public static IHostApplicationBuilder AddRegionApi(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RegionServiceOptions>().BindConfiguration(RegionServiceOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<RegionServiceOptions>, RegionServiceOptionsValidator>();
        // Mutual TLS: the edge (or an operator) reaches the API with its certificate; health stays anonymous.
        builder.AddGeoTls(PeerRoles.Api, TlsListener.Internal, PeerRoles.Edge, PeerRoles.Admin);
        services.AddGeoResilience();
        services.AddGeoLoadShedding();
        services.AddOpenApi(ApiContract.Configure);

        services.AddSingleton(sp => TopologyLoader.Load(sp.GetRequiredService<IOptions<RegionServiceOptions>>().Value.Topology));
        services.AddSingleton(sp => new HybridLogicalClock(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<RegionServiceOptions>>().Value.MaxClockSkew));
        services.AddSingleton<DirectoryConnection>();
        services.AddSingleton<IUserDirectory>(sp => sp.GetRequiredService<DirectoryConnection>().Users);
        services.AddSingleton<IShardMapSource>(sp => sp.GetRequiredService<DirectoryConnection>().ShardMaps);
        services.AddHostedService(sp => sp.GetRequiredService<DirectoryConnection>());
        services.AddSingleton<ShardRouter>();
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<RegionServiceOptions>>();
            var region = sp.GetRequiredService<GeoTopology>().Region(options.Value.Region);
            return new DocumentCache(region.Redis, options.Value.CacheTtl,
                sp.GetRequiredService<ResiliencePipelineProvider<string>>().GetPipeline(GeoPipelines.Redis), sp.GetRequiredService<ILogger<DocumentCache>>(),
                GeoTelemetry.RedisConnected(sp));
        });
        services.AddSingleton<RegionApi>();
        services.AddSingleton<ResidencyAccessFilter>();
        services.AddSingleton<ShardMigrations>();
        services.AddHostedService(sp => sp.GetRequiredService<ShardMigrations>());

        services.AddHealthChecks()
            .AddCheck<ShardsHealthCheck>("postgres", tags: [Extensions.ReadyTagName])
            .AddCheck<DirectoryHealthCheck>("directory", tags: [Extensions.ReadyTagName])
            .AddCheck<CacheHealthCheck>("redis", failureStatus: HealthStatus.Degraded, tags: [Extensions.ReadyTagName]);
        return builder;
    }

    private const string ReadyTagName = ServiceDefaults.Extensions.ReadyTag;

    /// <summary>Maps the public API of docs/architecture.md §4 and /openapi/v1.json.</summary>
    public static WebApplication MapRegionApi(this WebApplication app)
    {
        var region = app.Services.GetRequiredService<IOptions<RegionServiceOptions>>().Value.Region;
        app.Use((context, next) =>
        {
            context.Response.OnStarting(() =>
            {
                var headers = context.Response.Headers;
                headers[RegionApi.RegionHeader] = region;
                if (context.Response.StatusCode == StatusCodes.Status503ServiceUnavailable && !headers.ContainsKey("Retry-After"))
                {
                    headers.RetryAfter = "1";
                }

                return Task.CompletedTask;
            });
            return next(context);
        });
        app.UseRateLimiter();
        app.UseGeoApiAccess();
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/scalar"); // the rendered reference of /openapi/v1.json

        var api = app.Services.GetRequiredService<RegionApi>();
        var users = app.MapGroup("/v1/users");
        users.AddEndpointFilter<ResidencyAccessFilter>();
        users.MapPost("/", (HttpContext http, CancellationToken ct) => api.CreateUserAsync(http, ct))
            .WithContract(ApiContract.CreateUser, "Create a user with a residency (and optionally a home region)")
            .Accepts<CreateUserRequest>("application/json").Produces<UserView>(StatusCodes.Status201Created);
        users.MapGet("/{userId}", (HttpContext http, string userId, CancellationToken ct) => api.GetUserAsync(http, userId, ct))
            .WithContract(ApiContract.GetUser, "Read a user's placement").Produces<UserView>();
        users.MapDelete("/{userId}", (HttpContext http, string userId, CancellationToken ct) => api.EraseUserAsync(http, userId, ct))
            .WithContract(ApiContract.EraseUser, "Erase a user and all their data in every region").Produces(StatusCodes.Status204NoContent);
        users.MapPut("/{userId}/docs/{collection}/{key}", (HttpContext http, string userId, string collection, string key, CancellationToken ct) =>
            api.PutDocumentAsync(http, userId, collection, Unescape(key), ct))
            .WithContract(ApiContract.PutDocument, "Create or replace a document (any JSON value)")
            .Accepts<JsonElement>("application/json").Produces<DocumentWritten>(StatusCodes.Status201Created).Produces<DocumentWritten>();
        users.MapGet("/{userId}/docs/{collection}/{key}", (HttpContext http, string userId, string collection, string key, CancellationToken ct) =>
            api.GetDocumentAsync(http, userId, collection, Unescape(key), ct))
            .WithContract(ApiContract.GetDocument, "Read a document; its version is the ETag header").Produces<JsonElement>();
        users.MapDelete("/{userId}/docs/{collection}/{key}", (HttpContext http, string userId, string collection, string key, CancellationToken ct) =>
            api.DeleteDocumentAsync(http, userId, collection, Unescape(key), ct))
            .WithContract(ApiContract.DeleteDocument, "Delete a document").Produces(StatusCodes.Status204NoContent);
        users.MapGet("/{userId}/docs/{collection}", (HttpContext http, string userId, string collection, string? limit, string? after, CancellationToken ct) =>
            int.TryParse(limit ?? "100", System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var take)
                ? api.ListDocumentsAsync(http, userId, collection, take, after, ct)
                : Task.FromResult<IResult>(RegionProblems.InvalidRequest("limit must be a whole number.")))
            .WithContract(ApiContract.ListDocuments, "List a collection in key order, a page at a time").Produces<DocumentListView>();
        users.MapPost("/{userId}/counters/{name}", (HttpContext http, string userId, string name, CancellationToken ct) => api.IncrementCounterAsync(http, userId, name, ct))
            .WithContract(ApiContract.IncrementCounter, "Add a signed amount to a counter; answers the new value")
            .Accepts<CounterIncrement>("application/json").Produces<CounterView>();
        users.MapGet("/{userId}/counters/{name}", (HttpContext http, string userId, string name, CancellationToken ct) => api.GetCounterAsync(http, userId, name, ct))
            .WithContract(ApiContract.GetCounter, "Read a counter (0 when never incremented)").Produces<CounterView>();
        return app;
    }

    // Kestrel decodes the path except %2F (it would change the segments); keys may contain '/', so restore it.
    private static string Unescape(string key) => key.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
}
