using System.Text.Json;
using System.Text.Json.Nodes;

namespace Geo.Cli.Tests;

/// <summary>Topology files for tests, in a temporary directory removed on dispose.</summary>
internal sealed class TestTopologies : IDisposable
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("geoctl-tests-").FullName;

    /// <summary>The checked-in local topology, copied.</summary>
    public string Local() => Write("local.json", File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Data", "topology.local.json")));

    /// <summary>One region <c>us-east</c> (jurisdiction us) with the given shards.</summary>
    public string WithShards(IReadOnlyDictionary<string, string> shards, string name = "shards.json", string? directoryDatabase = null)
    {
        var shardsNode = new JsonObject();
        foreach (var (id, connection) in shards)
        {
            shardsNode[id] = connection;
        }

        var document = new JsonObject
        {
            ["regions"] = new JsonObject
            {
                ["us-east"] = new JsonObject
                {
                    ["jurisdiction"] = "us",
                    ["edge"] = "http://127.0.0.1:8080",
                    ["api"] = new JsonArray("http://127.0.0.1:8090"),
                    ["directory"] = "http://127.0.0.1:8100",
                    ["replicator"] = "http://127.0.0.1:8110",
                    ["redis"] = "127.0.0.1:6380,password=redis-secret",
                    ["shards"] = shardsNode,
                },
            },
        };
        if (directoryDatabase is not null)
        {
            document["regions"]!["us-east"]!["directoryDatabase"] = directoryDatabase;
        }

        return Write(name, document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    public string Write(string name, string json)
    {
        var path = Path.Combine(Directory, name);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, json);
        return path;
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
