using Geo.Core.Clock;
using Geo.Core.Topology;
using Geo.Replicator.AntiEntropy;
using Geo.Replicator.Directory;
using Geo.Replicator.Hosting;
using Geo.Replicator.Receiving;
using Geo.Replicator.Sending;
using Geo.Replicator.Sharding;
using Geo.Replicator.Telemetry;
using Geo.ServiceDefaults.Caching;
using Geo.ServiceDefaults.Resilience;
using Geo.Core.Tls;
using Geo.ServiceDefaults.Tls;
using Geo.ServiceDefaults.Topology;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Geo.Replicator;

internal static class Extensions
{
    /// <summary>Registers the replicator: options, shards, directory link, peer links, receiver, anti-entropy, metrics.</summary>
    public static WebApplicationBuilder AddReplicator(this WebApplicationBuilder builder)
    {
        // Mutual TLS: a peer's region and role come from its certificate; one interceptor checks every call's role.
        builder.AddGeoTls(PeerRoles.Replicator, TlsListener.Internal);
        var services = builder.Services;
        services.AddOptions<GeoSiteOptions>().BindConfiguration(GeoSiteOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<GeoSiteOptions>, GeoSiteOptionsValidator>();
        services.AddOptions<ReplicatorOptions>().BindConfiguration(ReplicatorOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<ReplicatorOptions>, ReplicatorOptionsValidator>();
        services.AddGeoResilience();
        services.AddGrpc(o => o.Interceptors.Add<PeerAuthorizationInterceptor>());
        services.AddOptions<Grpc.AspNetCore.Server.GrpcServiceOptions>().Configure<IOptions<ReplicatorOptions>>((grpc, replicator) =>
        {
            // The receiver's limits are the sender's (GrpcPeerTransport): one setting for both sides.
            grpc.MaxReceiveMessageSize = replicator.Value.MaxMessageBytes;
            grpc.MaxSendMessageSize = replicator.Value.MaxMessageBytes;
        });

        builder.AddGeoTopology();
        services.AddSingleton(sp => new HybridLogicalClock(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IOptions<GeoSiteOptions>>().Value.MaxClockSkew));
        services.TryAddSingleton(Random.Shared);
        services.TryAddSingleton<IPeerTransport, GrpcPeerTransport>();
        services.AddGeoDocumentCache(sp => sp.GetRequiredService<GeoTopology>().Region(sp.GetRequiredService<IOptions<GeoSiteOptions>>().Value.Region).Redis);
        services.AddSingleton<LocalShards>();
        services.AddHostedService(sp => sp.GetRequiredService<LocalShards>());
        services.AddSingleton<DirectoryLink>();
        services.AddHostedService(sp => sp.GetRequiredService<DirectoryLink>());
        services.AddSingleton<PeerStates>();
        services.AddSingleton<ReplicatorMetrics>();
        services.AddSingleton<BatchApplier>();
        services.AddSingleton<KnownKinds>();
        services.AddSingleton<AntiEntropyRunner>();
        services.AddHostedService(sp => sp.GetRequiredService<AntiEntropyRunner>());
        services.AddHostedService<ReplicationHost>();
        services.AddOptions<Storage.Retention.RetentionOptions>().BindConfiguration(Storage.Retention.RetentionOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Retention.RetentionMetrics>();
        services.AddHostedService<Retention.RetentionService>();
        services.AddSingleton<Erasure.EraseWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<Erasure.EraseWorker>());

        services.AddHealthChecks()
            .AddCheck<ReplicatorReadiness>("replicator", tags: [ServiceDefaults.Extensions.ReadyTag]);
        return builder;
    }

    /// <summary>Maps the Replication gRPC service.</summary>
    public static WebApplication MapReplicator(this WebApplication app)
    {
        app.MapGrpcService<ReplicationService>();
        return app;
    }
}

/// <summary>Ready once the shards are migrated, a shard map is known and the residency view has read the directory.</summary>
internal sealed class ReplicatorReadiness(LocalShards shards, DirectoryLink directory) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(!shards.IsMigrated ? HealthCheckResult.Unhealthy("shards not migrated yet")
            : directory.CurrentMap is null ? HealthCheckResult.Unhealthy("no shard map from the directory yet")
            : !directory.IsCaughtUp ? HealthCheckResult.Unhealthy("residency view not loaded from the directory yet")
            : HealthCheckResult.Healthy());
}
