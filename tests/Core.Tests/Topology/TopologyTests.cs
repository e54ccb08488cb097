using Geo.Core.Topology;

namespace Geo.Core.Tests.Topology;

public class TopologyTests
{
    private static GeoTopology Local() => TopologyLoader.Load(Path.Combine(AppContext.BaseDirectory, "Data", "topology.local.json"));

    [Fact]
    public void The_checked_in_local_topology_is_valid_and_has_four_regions_of_two_shards()
    {
        var topology = Local();

        Assert.Equal(["eu-central", "eu-west", "us-east", "us-west"], topology.Regions.Keys);
        Assert.All(topology.Regions.Values, r => Assert.Equal(2, r.Shards.Count));
        Assert.Equal(["eu", "us"], topology.Jurisdictions);
        Assert.Equal(new Uri("https://127.0.0.1:8080"), topology.Region("us-east").Edge);
    }

    [Fact]
    public void Residency_allows_only_regions_of_its_jurisdiction_and_global_allows_all()
    {
        var topology = Local();

        Assert.Equal(["eu-central", "eu-west"], topology.AllowedRegions("eu"));
        Assert.Equal(["us-east", "us-west"], topology.AllowedRegions("us"));
        Assert.Equal(4, topology.AllowedRegions(GeoTopology.GlobalResidency).Count);
        Assert.Empty(topology.AllowedRegions("apac"));
        Assert.False(topology.IsAllowed("eu", "us-east"));
        Assert.True(topology.IsAllowed("global", "us-east"));
        Assert.False(topology.IsKnownResidency("apac"));
    }

    [Fact]
    public void A_new_user_lands_in_the_edge_region_when_allowed_else_the_nearest_allowed()
    {
        var topology = Local();

        Assert.Equal("us-east", topology.PickHomeRegion("us-east", "us"));
        Assert.Equal("eu-west", topology.PickHomeRegion("us-east", "eu"));
        Assert.Equal("eu-central", topology.PickHomeRegion("eu-central", "global"));
        Assert.Throws<ArgumentException>(() => topology.PickHomeRegion("us-east", "apac"));
    }

    [Fact]
    public void Failover_order_is_by_latency_from_the_home_region()
    {
        var topology = Local();
        Assert.Equal(["eu-west", "eu-central"], topology.ByLatencyFrom("eu-west", topology.AllowedRegions("eu")));
        Assert.Equal(["us-east", "us-west", "eu-west", "eu-central"], topology.ByLatencyFrom("us-east", topology.Regions.Keys));
        Assert.Equal(["us-west"], topology.JurisdictionPeers("us-east"));
    }

    [Fact]
    public void A_broken_topology_reports_every_error_at_once_each_naming_key_and_fix()
    {
        const string json = """
        {
          "regions": {
            "us-east": {
              "jurisdiction": "global",
              "edge": "not a url",
              "api": [],
              "directory": "ftp://127.0.0.1:8100",
              "replicator": "http://127.0.0.1:8110",
              "shards": { "s-0": "" }
            },
            "Bad_Name": {
              "jurisdiction": "eu",
              "edge": "http://127.0.0.1:8081",
              "api": ["http://127.0.0.1:8091"],
              "directory": "http://127.0.0.1:8101",
              "replicator": "http://127.0.0.1:8111",
              "redis": "127.0.0.1:6380",
              "shards": { "s-0": "Host=x" }
            }
          },
          "latencyMs": { "us-east": { "mars": -1 } }
        }
        """;

        var ex = Assert.Throws<TopologyException>(() => TopologyLoader.Parse(json));
        string[] expectedKeys =
        [
            "regions.Bad_Name:", "regions.us-east.jurisdiction:", "regions.us-east.edge:",
            "regions.us-east.directory:", "regions.us-east.api:", "regions.us-east.redis:", "regions.us-east.shards.s-0:",
            "latencyMs.us-east.mars:",
        ];
        foreach (var key in expectedKeys)
        {
            Assert.Contains(ex.Errors, e => e.StartsWith(key, StringComparison.Ordinal));
        }

        // Both latency problems (unknown region, negative) and both shard problems (empty, duplicate) are reported.
        Assert.Equal(2, ex.Errors.Count(e => e.StartsWith("latencyMs.us-east.mars:", StringComparison.Ordinal)));
        Assert.Equal(2, ex.Errors.Count(e => e.StartsWith("regions.us-east.shards.s-0:", StringComparison.Ordinal)));
        Assert.Contains(ex.Errors, e => e.Contains("also used by region 'Bad_Name'", StringComparison.Ordinal));
        Assert.Equal(10, ex.Errors.Count);
        Assert.All(ex.Errors, e => Assert.Matches("(use|set|give|write|remove|rename|add|list|Fix)", e));
        Assert.Contains("10 error(s)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_json_names_the_line()
    {
        var ex = Assert.Throws<TopologyException>(() => TopologyLoader.Parse("{\n  \"regions\": {\n    \"a\": [1,\n}"));
        Assert.Single(ex.Errors);
        Assert.Contains("line", ex.Errors[0], StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_says_how_to_point_at_one()
    {
        var ex = Assert.Throws<TopologyException>(() => TopologyLoader.Load("/nonexistent/topology.json"));
        Assert.Contains("Geo:Topology", ex.Errors[0], StringComparison.Ordinal);
    }
}
