using Geo.Core.Clock;
using Geo.Core.Topology;
using Geo.RegionService.Admission;
using Geo.RegionService.Counters;
using Geo.RegionService.Documents;
using Geo.RegionService.Idempotency;
using Geo.RegionService.Users;
using Geo.RegionService.Api.OpenApi;
using Geo.RegionService.Auth;
using Geo.RegionService.Directory;
using Geo.RegionService.Sharding;
using Geo.ServiceDefaults.Auth;
using Geo.ServiceDefaults.Caching;
using Geo.ServiceDefaults.Resilience;
using Geo.ServiceDefaults.Shedding;
using Geo.ServiceDefaults.Tls;
using Geo.ServiceDefaults.Topology;
using Geo.Core.Tls;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
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

        builder.AddGeoTopology();
        services.AddSingleton(sp => new HybridLogicalClock(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<RegionServiceOptions>>().Value.MaxClockSkew));
        services.AddSingleton<DirectoryConnection>();
        services.AddSingleton<IUserDirectory>(sp => sp.GetRequiredService<DirectoryConnection>().Users);
        services.AddSingleton<IShardMapSource>(sp => sp.GetRequiredService<DirectoryConnection>().ShardMaps);
        services.AddHostedService(sp => sp.GetRequiredService<DirectoryConnection>());
        services.AddSingleton<ShardRouter>();
        services.AddGeoDocumentCache(sp => sp.GetRequiredService<GeoTopology>().Region(sp.GetRequiredService<IOptions<RegionServiceOptions>>().Value.Region).Redis);
        services.AddSingleton<AdmissionFilter>();
        services.AddSingleton<IdempotentWrites>();
        services.AddSingleton<UserEndpoints>();
        services.AddSingleton<DocumentEndpoints>();
        services.AddSingleton<CounterEndpoints>();
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
                headers[Contracts.GeoHeaders.Region] = region;
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

        var users = app.MapGroup("/v1/users");
        users.AddEndpointFilter<ResidencyAccessFilter>();
        UserEndpoints.Map(users);
        DocumentEndpoints.Map(users);
        CounterEndpoints.Map(users);
        return app;
    }
}
