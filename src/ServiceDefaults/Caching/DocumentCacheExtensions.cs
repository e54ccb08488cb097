using System.ComponentModel.DataAnnotations;
using Geo.ServiceDefaults.Resilience;
using Geo.ServiceDefaults.Telemetry;
using Geo.Storage.Caching;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.Registry;

namespace Geo.ServiceDefaults.Caching;

/// <summary>The document cache's settings (section <c>Geo</c>): one TTL for every service that reads or invalidates it.</summary>
public sealed class DocumentCacheOptions
{
    public const string SectionName = "Geo";

    /// <summary>How long a cached document may be served. Default 60 s (also bounds staleness if Redis missed an invalidation).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan CacheTtl { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>The one registration of <see cref="DocumentCache"/>, used by the regional API (reads) and the Replicator (invalidations).</summary>
public static class DocumentCacheExtensions
{
    /// <summary>
    /// Registers the region's document cache: the Redis of <paramref name="redisConfiguration"/> (the topology's entry of
    /// this service's region), TTL <c>Geo:CacheTtl</c>, every call bounded by the <see cref="GeoPipelines.Redis"/>
    /// pipeline, the connection handed to Redis tracing.
    /// </summary>
    public static IServiceCollection AddGeoDocumentCache(this IServiceCollection services, Func<IServiceProvider, string> redisConfiguration)
    {
        services.AddOptions<DocumentCacheOptions>().BindConfiguration(DocumentCacheOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(sp => new DocumentCache(
            redisConfiguration(sp),
            sp.GetRequiredService<IOptions<DocumentCacheOptions>>().Value.CacheTtl,
            sp.GetRequiredService<ResiliencePipelineProvider<string>>().GetPipeline(GeoPipelines.Redis),
            sp.GetRequiredService<ILogger<DocumentCache>>(),
            GeoTelemetry.RedisConnected(sp)));
        return services;
    }
}
