using System.Text.Json.Nodes;
using CsCheck;
using Geo.Core.Topology;
using Geo.EdgeRouter.Routing;
using Geo.Testing.Services;

namespace Geo.EdgeRouter.Tests.Routing;

public sealed class RegionChooserTests
{
    private static readonly string LocalJson = File.ReadAllText(Path.Combine(ServiceProcess.RepositoryRoot(), "config", "topology.local.json"));
    private static readonly GeoTopology Local = TopologyLoader.Parse(LocalJson);
    private static readonly string[] Regions = ["us-east", "us-west", "eu-west", "eu-central"];

    private static Func<string, bool> Healthy(params string[] regions) => r => regions.Contains(r);

    [Fact]
    public void Home_region_is_chosen_while_healthy()
    {
        var choice = RegionChooser.Choose(Local, "eu", "eu-central", Healthy(Regions));
        Assert.Equal("eu-central", choice.Target);
        Assert.False(choice.IsFailover);
        Assert.Equal(["eu-central", "eu-west"], choice.Order);
    }

    [Fact]
    public void Unhealthy_home_fails_over_to_the_next_allowed_region_not_the_nearest_region()
    {
        // From eu-west, us-east (75 ms) is nearer than nothing else healthy in eu: it must still not be picked.
        var choice = RegionChooser.Choose(Local, "eu", "eu-west", Healthy("eu-central", "us-east", "us-west"));
        Assert.Equal("eu-central", choice.Target);
        Assert.True(choice.IsFailover);
    }

    [Fact]
    public void No_healthy_allowed_region_means_no_target_even_when_others_are_healthy()
    {
        var choice = RegionChooser.Choose(Local, "eu", "eu-west", Healthy("us-east", "us-west"));
        Assert.Null(choice.Target);
        Assert.False(choice.IsFailover);
    }

    [Fact]
    public void New_user_goes_to_the_edge_region_when_allowed_else_the_nearest_allowed()
    {
        Assert.Equal("us-east", RegionChooser.Choose(Local, "us", "us-east", Healthy(Regions)).Target);
        Assert.Equal("us-east", RegionChooser.Choose(Local, "global", "us-east", Healthy(Regions)).Target);
        var eu = RegionChooser.Choose(Local, "eu", "us-east", Healthy(Regions));
        Assert.Equal("eu-west", eu.Target);      // 75 ms from us-east against 90 ms for eu-central
        Assert.False(eu.IsFailover);             // the first choice for a new user is not a failover
        Assert.Equal("eu-central", RegionChooser.Choose(Local, "eu", "us-east", Healthy("eu-central")).Target);
    }

    [Fact]
    public void Unknown_residency_allows_nothing()
        => Assert.Null(RegionChooser.Choose(Local, "mars", "us-east", Healthy(Regions)).Target);

    [Fact]
    public void Preferred_region_comes_first_even_when_a_peer_is_listed_at_zero_latency()
    {
        var json = JsonNode.Parse(LocalJson)!;
        json["latencyMs"]!["eu-west"]!["eu-central"] = 0;
        var topology = TopologyLoader.Parse(json.ToJsonString());
        Assert.Equal("eu-west", RegionChooser.Choose(topology, "eu", "eu-west", Healthy(Regions)).Target);
    }

    [Fact]
    public void Property_never_a_region_outside_residency_and_always_the_first_healthy_in_latency_order()
    {
        var latencies = Gen.Int[0, 300].Array[12];
        var residencies = Gen.OneOf("us", "eu", "global", "mars");
        var preferred = Gen.OneOf(Regions);
        var health = Gen.Bool.Array[4];
        Gen.Select(latencies, residencies, preferred, health).Sample((ms, residency, from, healthy) =>
        {
            var topology = WithLatencies(ms);
            var up = Regions.Where((_, i) => healthy[i]).ToHashSet();
            var choice = RegionChooser.Choose(topology, residency, from, up.Contains);
            var allowed = topology.AllowedRegions(residency);

            Assert.All(choice.Order, r => Assert.True(topology.IsAllowed(residency, r), $"{r} in the order of {residency}"));
            Assert.Equal(allowed.Order(StringComparer.Ordinal), choice.Order.Order(StringComparer.Ordinal));
            if (choice.Target is { } target)
            {
                Assert.True(topology.IsAllowed(residency, target), $"{target} chosen for {residency}");
                Assert.Contains(target, up);
                Assert.Equal(choice.Order.First(up.Contains), target);
            }
            else
            {
                Assert.DoesNotContain(allowed, up.Contains);
            }

            if (allowed.Contains(from) && up.Contains(from))
            {
                Assert.Equal(from, choice.Target);
                Assert.False(choice.IsFailover);
            }

            // Failover order is by latency from the preferred region after the preferred region itself.
            var rest = choice.Order.Skip(allowed.Contains(from) ? 1 : 0).Select(r => topology.LatencyMs(from, r)).ToArray();
            Assert.Equal(rest.Order(), rest);
        }, iter: 2_000);
    }

    [Fact]
    public void Residency_guard_refuses_clusters_and_destinations_outside_residency()
    {
        Assert.Null(ResidencyGuard.Check(Local, "eu", "eu-west", ["eu-west/0", "eu-west/1"]));
        Assert.NotNull(ResidencyGuard.Check(Local, "eu", "us-east", ["us-east/0"]));
        Assert.NotNull(ResidencyGuard.Check(Local, "eu", "eu-west", ["us-east/0"]));
        Assert.NotNull(ResidencyGuard.Check(Local, "us", "eu-central", []));
        Assert.Null(ResidencyGuard.Check(Local, "global", "eu-central", ["eu-central/0"]));
    }

    private static GeoTopology WithLatencies(int[] ms)
    {
        var json = JsonNode.Parse(LocalJson)!;
        var table = new JsonObject();
        var k = 0;
        foreach (var from in Regions)
        {
            var row = new JsonObject();
            foreach (var to in Regions.Where(r => r != from))
            {
                row[to] = ms[k++];
            }

            table[from] = row;
        }

        json["latencyMs"] = table;
        return TopologyLoader.Parse(json.ToJsonString());
    }
}
