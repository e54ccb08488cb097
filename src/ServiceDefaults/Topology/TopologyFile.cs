using Geo.Core.Topology;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Geo.ServiceDefaults.Topology;

/// <summary>
/// The process's topology file (<c>Geo:Topology</c>), read once: the first reader loads it and every later one shares
/// the result — the topology, or the errors that fail start-up validation. Registered once per process by
/// <see cref="TopologyFileExtensions.AddGeoTopology"/> (with <see cref="GeoTopology"/> itself); services inject
/// <see cref="GeoTopology"/>, and this only to read the file again for a shard added since start-up.
/// </summary>
public sealed class TopologyFile
{
    public const string Key = "Geo:Topology";

    private readonly Lazy<(GeoTopology? Topology, IReadOnlyList<string> Errors)> _loaded;

    public TopologyFile(string? path)
    {
        Path = string.IsNullOrWhiteSpace(path) ? null : path;
        _loaded = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The file named by <c>Geo:Topology</c> of <paramref name="configuration"/>.</summary>
    public static TopologyFile From(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return new TopologyFile(configuration[Key]);
    }

    /// <summary>The path; null when <c>Geo:Topology</c> is not set.</summary>
    public string? Path { get; }

    /// <summary>The topology; null when <c>Geo:Topology</c> is not set or the file does not load (<see cref="Errors"/>).</summary>
    public GeoTopology? TryTopology => _loaded.Value.Topology;

    /// <summary>Why the file does not load, each error naming the key and the fix; empty when it loads or no path is set.</summary>
    public IReadOnlyList<string> Errors => _loaded.Value.Errors;

    /// <summary>The topology; throws <see cref="TopologyException"/> when there is none (validation at start-up reports why first).</summary>
    public GeoTopology Topology => TryTopology ?? throw new TopologyException(Path is null ? [$"{Key}: missing."] : Errors);

    /// <summary>Reads the file again: a shard added with <c>geoctl shards add</c> since start-up is in the file, not in <see cref="Topology"/>.</summary>
    /// <exception cref="TopologyException">The file is missing or invalid now.</exception>
    public GeoTopology Reload() => TopologyLoader.Load(Path ?? throw new TopologyException([$"{Key}: missing."]));

    private (GeoTopology?, IReadOnlyList<string>) Load()
    {
        if (Path is null)
        {
            return (null, []);
        }

        try
        {
            return (TopologyLoader.Load(Path), []);
        }
        catch (TopologyException e)
        {
            return (null, e.Errors);
        }
    }
}

/// <summary>The one registration of the process's <see cref="TopologyFile"/> and <see cref="GeoTopology"/>.</summary>
public static class TopologyFileExtensions
{
    /// <summary>
    /// Registers the <see cref="TopologyFile"/> of <c>Geo:Topology</c> and the <see cref="GeoTopology"/> it holds, once:
    /// later calls return the registered file. Reads the configuration as it stands (command line included).
    /// </summary>
    public static TopologyFile AddGeoTopology(this IHostApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (builder.Services.FirstOrDefault(d => d.ServiceType == typeof(TopologyFile))?.ImplementationInstance is TopologyFile registered)
        {
            return registered;
        }

        var file = TopologyFile.From(builder.Configuration);
        builder.Services.AddSingleton(file);
        builder.Services.TryAddSingleton(sp => sp.GetRequiredService<TopologyFile>().Topology);
        return file;
    }
}
