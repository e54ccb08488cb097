using Geo.EdgeRouter.Auth;
using Geo.EdgeRouter.Directory;
using Geo.EdgeRouter.Headers;
using Geo.EdgeRouter.Health;
using Geo.EdgeRouter.Limits;
using Geo.EdgeRouter.Routing;
using Geo.EdgeRouter.Telemetry;
using Geo.ServiceDefaults.Auth;
using Geo.ServiceDefaults.Resilience;
using Geo.ServiceDefaults.Tls;
using Geo.ServiceDefaults.Topology;
using Geo.Core.Tls;
using Yarp.ReverseProxy.Forwarder;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;

namespace Geo.EdgeRouter;

internal static class Extensions
{
    /// <summary>Registers the edge: options, topology, directory lookups, YARP clusters per region, health, limits, metrics.</summary>
    public static IHostApplicationBuilder AddEdgeRouter(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;

        // One line per probe per destination drowns the rest; failed probes (Warning) and health changes still log.
        builder.Logging.AddFilter("Yarp.ReverseProxy.Health.ActiveHealthCheckMonitor", LogLevel.Warning);
        // YARP logs every proxied URL (user id, collection, key) at Information; only its warnings and errors are kept.
        builder.Logging.AddFilter("Yarp", LogLevel.Warning);
        services.AddEdgeForwarding();
        services.AddOptions<EdgeSiteOptions>().BindConfiguration(EdgeSiteOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<EdgeSiteOptions>, EdgeSiteOptionsValidator>();
        services.AddOptions<EdgeOptions>().BindConfiguration(EdgeOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<EdgeOptions>, EdgeOptionsValidator>();
        // HTTPS on the public port (no client certificate asked); the edge's own certificate authenticates it to the
        // APIs and directories it calls (mutual TLS).
        builder.AddGeoTls(PeerRoles.Edge, TlsListener.Public);
        services.AddSingleton<IForwarderHttpClientFactory, MutualTlsForwarderFactory>();
        services.AddGeoResilience();
        services.AddSingleton<EdgeMetrics>();
        services.AddEdgeRateLimits();

        builder.AddGeoTopology();
        services.AddSingleton<UserLocator>();
        services.AddHostedService<DirectoryWarmUp>();
        services.AddReverseProxy().AddDrainingDetection();
        services.AddSingleton<IProxyConfigProvider, TopologyProxyConfig>();
        services.AddSingleton<IPassiveHealthCheckPolicy, DestinationFailurePolicy>();
        services.AddHealthChecks().AddCheck<DirectoryHealthCheck>("directory", tags: [ServiceDefaults.Extensions.ReadyTag]);
        return builder;
    }

    /// <summary>Request ids and <c>Geo-Edge-Region</c> on every request, before anything can answer it.</summary>
    public static WebApplication UseEdgeHeaders(this WebApplication app)
    {
        app.UseEdgeHeaders(app.Services.GetRequiredService<IOptions<EdgeSiteOptions>>().Value.Region, app.Services.GetRequiredService<TimeProvider>());
        return app;
    }

    /// <summary>Rate limits, token checks, then the proxy: route by residency and health, check the residency against the token, guard, balance, forward, watch for failures.</summary>
    public static WebApplication MapEdgeRouter(this WebApplication app)
    {
        app.UseRateLimiter();
        app.UseGeoApiAccess();
        app.MapReverseProxy(proxy =>
        {
            proxy.UseMiddleware<RegionRoutingMiddleware>();
            proxy.UseMiddleware<EdgeAccessMiddleware>();
            proxy.UseSessionAffinity();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
            proxy.UseMiddleware<ResidencyGuardMiddleware>();
        });
        return app;
    }
}
