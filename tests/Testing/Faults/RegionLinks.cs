using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;

namespace Geo.Testing.Faults;

/// <summary>
/// <see cref="FaultProxy"/>s on the links of one region of a written topology file: its services' Postgres (shards and
/// directory database), its Redis, its directory, and its replicator (the address its peers dial). <see cref="InsertAsync"/>
/// points the region's entries of the file at the proxies, so it must run before the services start; the services still
/// listen on their own ports and tests still reach the databases directly. Every proxy forwards to 127.0.0.1 only.
/// </summary>
public sealed class RegionLinks : IAsyncDisposable
{
    private RegionLinks(string region, FaultProxy postgres, FaultProxy redis, FaultProxy directory, FaultProxy replicator)
    {
        Region = region;
        Postgres = postgres;
        Redis = redis;
        Directory = directory;
        Replicator = replicator;
    }

    public string Region { get; }

    /// <summary>Between the region's services (API, replicator, directory) and their Postgres server.</summary>
    public FaultProxy Postgres { get; }

    /// <summary>Between the region's services and Redis.</summary>
    public FaultProxy Redis { get; }

    /// <summary>Between every caller of the region's directory (its API and replicator first of all) and the directory.</summary>
    public FaultProxy Directory { get; }

    /// <summary>Between the other regions' replicators and this region's replicator.</summary>
    public FaultProxy Replicator { get; }

    public IReadOnlyList<FaultProxy> All => [Postgres, Redis, Directory, Replicator];

    /// <summary>Starts the four proxies of <paramref name="region"/> and rewrites its entries in the topology file at <paramref name="topologyPath"/>.</summary>
    public static async Task<RegionLinks> InsertAsync(string topologyPath, string region)
    {
        var topology = JsonNode.Parse(await File.ReadAllTextAsync(topologyPath))!;
        var node = topology["regions"]![region] ?? throw new ArgumentException($"'{region}' is not in {topologyPath}", nameof(region));
        var shards = node["shards"]!.AsObject();
        var postgresPort = new NpgsqlConnectionStringBuilder(shards.First().Value!.GetValue<string>()).Port;
        var redisEndpoint = node["redis"]!.GetValue<string>().Split(',')[0];
        var links = new RegionLinks(
            region,
            FaultProxy.Start(postgresPort),
            FaultProxy.Start(int.Parse(redisEndpoint[(redisEndpoint.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture)),
            FaultProxy.Start(new Uri(node["directory"]!.GetValue<string>()).Port),
            FaultProxy.Start(new Uri(node["replicator"]!.GetValue<string>()).Port));

        foreach (var (id, cs) in shards.ToList())
        {
            shards[id] = Through(cs!.GetValue<string>(), links.Postgres.Port);
        }

        node["directoryDatabase"] = Through(node["directoryDatabase"]!.GetValue<string>(), links.Postgres.Port);
        node["redis"] = node["redis"]!.GetValue<string>().Replace(redisEndpoint, $"127.0.0.1:{links.Redis.Port}", StringComparison.Ordinal);
        node["directory"] = links.Directory.Address.ToString().TrimEnd('/');
        node["replicator"] = links.Replicator.Address.ToString().TrimEnd('/');
        await File.WriteAllTextAsync(topologyPath, topology.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return links;
    }

    /// <summary>Every link forwards again, without added latency.</summary>
    public void HealAll()
    {
        foreach (var proxy in All)
        {
            proxy.Latency = TimeSpan.Zero;
            if (proxy.Mode != FaultMode.Pass)
            {
                // A blackholed stream lost bytes: reset it so neither side waits on a half-delivered message.
                if (proxy.Mode == FaultMode.Blackhole)
                {
                    proxy.ResetConnections();
                }

                proxy.Heal();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var proxy in All)
        {
            await proxy.DisposeAsync();
        }
    }

    private static string Through(string connectionString, int port)
        => new NpgsqlConnectionStringBuilder(connectionString) { Host = "127.0.0.1", Port = port }.ConnectionString;
}
