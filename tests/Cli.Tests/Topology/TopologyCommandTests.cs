using Geo.Core.Topology;

namespace Geo.Cli.Tests.Topology;

public sealed class TopologyCommandTests : IDisposable
{
    private const string Broken = """
        {
          "regions": {
            "us-east": { "jurisdiction": "us", "edge": "not a url", "api": [], "directory": "http://127.0.0.1:8100",
                         "replicator": "http://127.0.0.1:8110", "redis": "127.0.0.1:6380", "shards": { "dup": "Host=a" } },
            "Bad": null,
            "eu-west": { "jurisdiction": "global", "edge": "http://127.0.0.1:8082", "api": ["http://127.0.0.1:8092"],
                         "directory": "http://127.0.0.1:8102", "replicator": "http://127.0.0.1:8112", "redis": "",
                         "shards": { "dup": "Host=b", "eu-west-1": "" } }
          },
          "latencyMs": { "us-east": { "mars": 5 } }
        }
        """;

    private readonly CliRunner _cli = new();
    private readonly TestTopologies _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public async Task Validate_accepts_the_checked_in_local_topology()
    {
        var result = await _cli.RunAsync("topology", "validate", "--topology", _files.Local());

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("4 regions in 2 jurisdictions, 8 shards", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Validate_lists_every_error_of_a_broken_file_and_exits_6()
    {
        var path = _files.Write("broken.json", Broken);
        var expected = Assert.Throws<TopologyException>(() => TopologyLoader.Load(path)).Errors;
        Assert.True(expected.Count >= 8, $"the fixture should be broken in many ways, got {expected.Count}");

        var table = await _cli.RunAsync("topology", "validate", "--topology", path);
        var json = await _cli.RunAsync("topology", "validate", "--topology", path, "-o", "json");

        Assert.Equal(6, table.ExitCode);
        Assert.All(expected, error => Assert.Contains(error, table.Stdout, StringComparison.Ordinal));
        Assert.Contains($"{expected.Count} error(s)", table.Stdout, StringComparison.Ordinal);
        Assert.Equal(6, json.ExitCode);
        Assert.False(json.Json().GetProperty("valid").GetBoolean());
        Assert.Equal(expected, json.Json().GetProperty("errors").EnumerateArray().Select(e => e.GetString()!));
    }

    [Fact]
    public async Task A_missing_topology_file_is_not_found()
    {
        var result = await _cli.RunAsync("topology", "validate", "--topology", Path.Combine(_files.Directory, "nope.json"));

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("nope.json", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_topology_is_found_from_GEO_TOPOLOGY_else_by_walking_up_to_config()
    {
        var nested = Directory.CreateDirectory(Path.Combine(_files.Directory, "repo", "src", "deep")).FullName;
        _files.Write(Path.Combine("repo", "config", "topology.local.json"), File.ReadAllText(_files.Local()));
        _cli.CurrentDirectory = nested;

        var walked = await _cli.RunAsync("topology", "validate", "-o", "json");
        _cli.Environment["GEO_TOPOLOGY"] = _files.Write("broken.json", Broken);
        var fromEnvironment = await _cli.RunAsync("topology", "validate", "-o", "json");

        Assert.Equal(0, walked.ExitCode);
        Assert.Equal(Path.Combine(_files.Directory, "repo", "config", "topology.local.json"), walked.Json().GetProperty("path").GetString());
        Assert.Equal(6, fromEnvironment.ExitCode);
    }

    [Fact]
    public async Task Without_any_topology_the_command_says_how_to_give_one()
    {
        _cli.CurrentDirectory = _files.Directory;

        var result = await _cli.RunAsync("topology", "show");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("--topology", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Show_lists_regions_jurisdictions_endpoints_and_shards_without_passwords()
    {
        var path = _files.WithShards(new Dictionary<string, string>
        {
            ["us-east-0"] = "Host=db0;Database=geo0;Username=geo;Password=hunter2",
            ["us-east-1"] = "Host=db1;Database=geo1;Username=geo;Pwd='hunter3'",
        });

        var json = (await _cli.RunAsync("topology", "show", "--topology", path, "-o", "json")).Json();
        var table = await _cli.RunAsync("topology", "show", "--topology", path);

        var region = Assert.Single(json.GetProperty("regions").EnumerateArray());
        Assert.Equal("us", region.GetProperty("jurisdiction").GetString());
        Assert.Equal("http://127.0.0.1:8080", region.GetProperty("edge").GetString());
        Assert.Equal(["us-east-0", "us-east-1"], region.GetProperty("shards").EnumerateArray().Select(s => s.GetProperty("id").GetString()));
        Assert.Equal("Host=db0;Database=geo0;Username=geo;Password=***", region.GetProperty("shards")[0].GetProperty("connection").GetString());
        Assert.Equal("127.0.0.1:6380,password=***", region.GetProperty("redis").GetString());
        Assert.Equal(["us-east"], json.GetProperty("jurisdictions").GetProperty("us").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(0, table.ExitCode);
        Assert.Contains("us-east-1", table.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter", json.ToString() + table.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("redis-secret", json.ToString() + table.Stdout, StringComparison.Ordinal);
    }
}
