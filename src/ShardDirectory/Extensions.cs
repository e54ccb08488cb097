using Geo.Core.Clock;
using Geo.ShardDirectory.Grpc;
using Geo.ShardDirectory.Hosting;
using Geo.ShardDirectory.ShardMaps;
using Geo.ShardDirectory.Storage;
using Geo.ShardDirectory.Users;
using Geo.Core.Tls;
using Geo.ServiceDefaults.Tls;
using Geo.ServiceDefaults.Topology;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Geo.ShardDirectory;

internal static class Extensions
{
    /// <summary>
    /// Topology and region (validated at start), the directory database (migrated before the server listens), the
    /// gRPC service, the change listener and the readiness check. Kestrel serves HTTPS only (mutual TLS, HTTP/1.1 and
    /// HTTP/2 by ALPN); every call but health needs a client certificate of the deployment's CA.
    /// </summary>
    public static WebApplicationBuilder AddShardDirectory(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<GeoSiteOptions>().BindConfiguration(GeoSiteOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<GeoSiteOptions>, GeoSiteOptionsValidator>();
        services.AddOptions<DirectoryOptions>().BindConfiguration(DirectoryOptions.SectionName).ValidateOnStart();
        services.AddSingleton<IValidateOptions<DirectoryOptions>, DirectoryOptionsValidator>();
        var topology = builder.AddGeoTopology();
        services.AddSingleton(sp => DirectorySite.Resolve(sp.GetRequiredService<IOptions<GeoSiteOptions>>().Value, sp.GetRequiredService<TopologyFile>()));

        services.AddSingleton(sp =>
        {
            var database = new NpgsqlDataSourceBuilder(sp.GetRequiredService<DirectorySite>().DirectoryDatabase).UseLoggerFactory(sp.GetRequiredService<ILoggerFactory>());
            database.ConnectionStringBuilder.ApplicationName ??= "geo-directory"; // in pg_stat_activity and statement logs, as the shards' geo-* names
            return database.Build();
        });
        services.AddSingleton(sp => new HybridLogicalClock(
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<DirectoryOptions>>().Value.MaxClockSkew));
        services.AddSingleton<DirectoryReadiness>();
        services.AddSingleton<UserStore>();
        services.AddSingleton<UserCache>();
        services.AddSingleton<EntryMetrics>();
        services.AddSingleton<ShardMapHub>();
        services.AddSingleton<ShardMapStore>();

        // Order matters: start-up migrates before the listener runs and before Kestrel accepts calls.
        services.AddHostedService<DirectoryStartup>();
        services.AddHostedService<ShardMapListener>();
        services.AddHostedService<MoveMetrics>();
        services.AddHealthChecks().AddCheck<DirectoryDatabaseHealthCheck>("directory-database", tags: [Extensions.ReadyTagName]);

        // Mutual TLS: the certificate names the caller's region and role; one interceptor checks every call's role first.
        builder.AddGeoTls(PeerRoles.Directory, TlsListener.Internal);
        // The first added is the outermost: the failure interceptor also sees (and logs) anything the role check throws
        // other than its refusals, which pass through as they are.
        services.AddGrpc(o =>
        {
            o.Interceptors.Add<StorageFailureInterceptor>();
            o.Interceptors.Add<PeerAuthorizationInterceptor>();
        });

        // grpc-dotnet logs at Error when a caller resets a call before its request was read (a replicator's session
        // ending mid-call) — the caller's doing, not a server fault. Handler failures are logged once, at Error, by
        // StorageFailureInterceptor instead, so nothing of ours goes unlogged.
        builder.Logging.AddFilter("Grpc.AspNetCore.Server.ServerCallHandler", LogLevel.None);
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]) && DefaultUrl(builder.Configuration, topology) is { } url)
        {
            builder.WebHost.UseUrls(url);
        }

        return builder;
    }

    public static WebApplication MapShardDirectory(this WebApplication app)
    {
        app.MapGrpcService<DirectoryService>();
        return app;
    }

    private const string ReadyTagName = ServiceDefaults.Extensions.ReadyTag;

    // The topology's directory URL for this region when it can be read; a broken topology is reported by validation at start.
    private static string? DefaultUrl(IConfiguration configuration, TopologyFile topology)
    {
        var options = configuration.GetSection(GeoSiteOptions.SectionName).Get<GeoSiteOptions>() ?? new GeoSiteOptions();
        var (site, _) = DirectorySite.TryResolve(options, topology);
        return site?.Region.Directory.GetLeftPart(UriPartial.Authority);
    }
}
