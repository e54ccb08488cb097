using System.Text.Json.Serialization;

namespace Geo.Core.Topology;

/// <summary>The topology JSON as written (docs/architecture.md §3); validated into <see cref="GeoTopology"/>.</summary>
public sealed class TopologyDocument
{
    [JsonPropertyName("regions")]
    public Dictionary<string, RegionDocument?>? Regions { get; set; }

    [JsonPropertyName("latencyMs")]
    public Dictionary<string, Dictionary<string, int>?>? LatencyMs { get; set; }
}

/// <summary>One region's entry in the topology JSON.</summary>
public sealed class RegionDocument
{
    [JsonPropertyName("jurisdiction")]
    public string? Jurisdiction { get; set; }

    [JsonPropertyName("edge")]
    public string? Edge { get; set; }

    [JsonPropertyName("api")]
    public List<string>? Api { get; set; }

    [JsonPropertyName("directory")]
    public string? Directory { get; set; }

    [JsonPropertyName("replicator")]
    public string? Replicator { get; set; }

    [JsonPropertyName("redis")]
    public string? Redis { get; set; }

    /// <summary>Connection string of the region's directory database (users, shard maps).</summary>
    [JsonPropertyName("directoryDatabase")]
    public string? DirectoryDatabase { get; set; }

    [JsonPropertyName("shards")]
    public Dictionary<string, string?>? Shards { get; set; }
}
