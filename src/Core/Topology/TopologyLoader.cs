using System.Collections.Immutable;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Geo.Core.Topology;

/// <summary>Reads and validates a topology document, reporting every problem at once.</summary>
public static partial class TopologyLoader
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
    };

    /// <summary>Loads and validates the file at <paramref name="path"/>.</summary>
    /// <exception cref="TopologyException">The file is missing, not JSON, or invalid; lists every error.</exception>
    public static GeoTopology Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new TopologyException([$"Geo:Topology: file '{path}' does not exist; point Geo:Topology at a topology JSON file (e.g. config/topology.local.json)."]);
        }

        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates topology JSON.</summary>
    public static GeoTopology Parse(string json, string source = "topology")
    {
        TopologyDocument? document;
        try
        {
            document = JsonSerializer.Deserialize<TopologyDocument>(json, JsonOptions);
        }
        catch (JsonException ex)
        {
            throw new TopologyException([$"{source}: not valid topology JSON at line {ex.LineNumber + 1}, position {ex.BytePositionInLine}: {ex.Message} Fix the JSON syntax or the value's type."]);
        }

        var errors = Validate(document);
        return errors.Count > 0 ? throw new TopologyException(errors) : Build(document!);
    }

    /// <summary>Every problem of <paramref name="document"/>, each naming the key and the fix; empty when valid.</summary>
    public static IReadOnlyList<string> Validate(TopologyDocument? document)
    {
        var errors = new List<string>();
        if (document?.Regions is null || document.Regions.Count == 0)
        {
            errors.Add("regions: missing or empty; add at least one region, e.g. \"regions\": { \"us-east\": { ... } }.");
            return errors;
        }

        var shardOwners = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (id, region) in document.Regions.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            var at = $"regions.{id}";
            if (!NamePattern().IsMatch(id))
            {
                errors.Add($"{at}: region id '{id}' is invalid; use 1-64 characters of a-z, 0-9 and '-', starting with a letter.");
            }

            if (region is null)
            {
                errors.Add($"{at}: is null; give the region an object with jurisdiction, edge, api, directory, replicator, redis and shards.");
                continue;
            }

            if (string.IsNullOrWhiteSpace(region.Jurisdiction))
            {
                errors.Add($"{at}.jurisdiction: missing; set the legal area the region belongs to, e.g. \"us\" or \"eu\".");
            }
            else if (region.Jurisdiction == GeoTopology.GlobalResidency || !NamePattern().IsMatch(region.Jurisdiction))
            {
                errors.Add($"{at}.jurisdiction: '{region.Jurisdiction}' is not a valid jurisdiction; use a short lowercase name such as \"us\" or \"eu\" (\"global\" is reserved for residency).");
            }

            CheckUrl(errors, $"{at}.edge", region.Edge, "http://127.0.0.1:8080");
            CheckUrl(errors, $"{at}.directory", region.Directory, "http://127.0.0.1:8100");
            CheckUrl(errors, $"{at}.replicator", region.Replicator, "http://127.0.0.1:8110");
            if (region.Api is null || region.Api.Count == 0)
            {
                errors.Add($"{at}.api: missing or empty; list the region's API endpoints, e.g. [\"http://127.0.0.1:8090\"].");
            }
            else
            {
                for (var i = 0; i < region.Api.Count; i++)
                {
                    CheckUrl(errors, $"{at}.api[{i}]", region.Api[i], "http://127.0.0.1:8090");
                }
            }

            if (string.IsNullOrWhiteSpace(region.Redis))
            {
                errors.Add($"{at}.redis: missing; set the region's Redis endpoint, e.g. \"127.0.0.1:6380\".");
            }

            if (region.Shards is null || region.Shards.Count == 0)
            {
                errors.Add($"{at}.shards: missing or empty; give the region at least one shard, e.g. {{ \"{id}-0\": \"Host=...;Database=...\" }}.");
                continue;
            }

            foreach (var (shardId, connection) in region.Shards.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var shardAt = $"{at}.shards.{shardId}";
                if (!NamePattern().IsMatch(shardId))
                {
                    errors.Add($"{shardAt}: shard id '{shardId}' is invalid; use 1-64 characters of a-z, 0-9 and '-', starting with a letter.");
                }

                if (string.IsNullOrWhiteSpace(connection))
                {
                    errors.Add($"{shardAt}: connection string missing; set e.g. \"Host=127.0.0.1;Port=5433;Database=geo_{id.Replace('-', '_')}_0;Username=postgres\".");
                }

                if (shardOwners.TryGetValue(shardId, out var other))
                {
                    errors.Add($"{shardAt}: shard id '{shardId}' is also used by region '{other}'; shard ids must be unique across the topology, rename one.");
                }
                else
                {
                    shardOwners[shardId] = id;
                }
            }
        }

        foreach (var (from, row) in (document.LatencyMs ?? []).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!document.Regions.ContainsKey(from))
            {
                errors.Add($"latencyMs.{from}: '{from}' is not a region of this topology; use one of: {string.Join(", ", document.Regions.Keys.Order(StringComparer.Ordinal))}.");
            }

            foreach (var (to, ms) in (row ?? []).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (!document.Regions.ContainsKey(to))
                {
                    errors.Add($"latencyMs.{from}.{to}: '{to}' is not a region of this topology; remove the entry or add the region.");
                }

                if (ms < 0)
                {
                    errors.Add($"latencyMs.{from}.{to}: {ms} is negative; give the round-trip latency in milliseconds (0 or more).");
                }
            }
        }

        return errors;
    }

    private static void CheckUrl(List<string> errors, string key, string? value, string example)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            errors.Add($"{key}: missing; set an absolute http(s) URL, e.g. \"{example}\".");
        }
        else if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add($"{key}: '{value}' is not an absolute http(s) URL; write it like \"{example}\".");
        }
    }

    private static GeoTopology Build(TopologyDocument document)
    {
        var regions = document.Regions!.ToImmutableSortedDictionary(
            kv => kv.Key,
            kv => new RegionInfo(
                kv.Key,
                kv.Value!.Jurisdiction!,
                new Uri(kv.Value.Edge!),
                kv.Value.Api!.Select(a => new Uri(a)).ToImmutableArray(),
                new Uri(kv.Value.Directory!),
                new Uri(kv.Value.Replicator!),
                kv.Value.Redis!,
                kv.Value.DirectoryDatabase,
                kv.Value.Shards!.ToImmutableSortedDictionary(s => s.Key, s => s.Value!, StringComparer.Ordinal)),
            StringComparer.Ordinal);
        var latency = (document.LatencyMs ?? []).ToImmutableDictionary(
            kv => kv.Key,
            kv => (kv.Value ?? []).ToImmutableDictionary(StringComparer.Ordinal),
            StringComparer.Ordinal);
        return new GeoTopology(regions, latency);
    }

    [GeneratedRegex("^[a-z][a-z0-9-]{0,63}$")]
    private static partial Regex NamePattern();
}

/// <summary>A topology that cannot be used; <see cref="Errors"/> lists every problem found.</summary>
public sealed class TopologyException : Exception
{
    public TopologyException(IReadOnlyList<string> errors)
        : base($"The topology has {errors?.Count} error(s):{Environment.NewLine}  - {string.Join(Environment.NewLine + "  - ", errors ?? [])}")
    {
        Errors = errors ?? [];
    }

    public TopologyException()
        : this([])
    {
    }

    public TopologyException(string message)
        : this([message])
    {
    }

    public TopologyException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [message];
    }

    /// <summary>Each problem, naming the key and the fix.</summary>
    public IReadOnlyList<string> Errors { get; }
}
