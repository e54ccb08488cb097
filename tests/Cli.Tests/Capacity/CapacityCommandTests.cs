using System.Text.Json;

namespace Geo.Cli.Tests.Capacity;

public class CapacityCommandTests
{
    private readonly CliRunner _cli = new();

    [Fact]
    public async Task Json_output_is_the_plan_on_stdout_and_nothing_else()
    {
        var result = await _cli.RunAsync("capacity", "--users", "10000000", "-o", "json");

        Assert.Equal(0, result.ExitCode);
        var json = result.Json();
        Assert.Equal(10_000_000, json.GetProperty("inputs").GetProperty("users").GetInt64());
        Assert.Equal(10_000, json.GetProperty("peakRps").GetDouble(), 1e-6);
        Assert.Equal(23_600, json.GetProperty("dbOpsPerSecond").GetDouble(), 1e-6);
        Assert.Equal(1, json.GetProperty("shardsPerRegion").GetInt32());
        var rows = json.GetProperty("rows").EnumerateArray().ToList();
        Assert.Contains(rows, r => r.GetProperty("key").GetString() == "shardsPerRegion" && r.GetProperty("formula").GetString()!.Contains("shard-capacity", StringComparison.Ordinal));
        Assert.Equal("", result.Stderr);
    }

    [Fact]
    public async Task Options_reach_the_model()
    {
        var result = await _cli.RunAsync(
            "capacity", "--users", "2000000", "--dau", "0.05", "--peak-concurrency", "0.02", "--rps-per-user", "1", "--read-write-ratio", "90:10",
            "--db-amplification", "2", "--cache-hit", "0.8", "--changelog-ops", "2", "--shard-capacity", "100", "--regions", "3", "--replicas", "3",
            "--headroom", "0.5", "--data-per-dau-kb", "10", "--output", "json");

        Assert.Equal(0, result.ExitCode);
        var json = result.Json();
        Assert.Equal(9, json.GetProperty("inputs").GetProperty("readsPerWrite").GetDouble(), 1e-9);
        Assert.Equal(1_160, json.GetProperty("provisionedOpsPerRegion").GetDouble(), 1e-6);
        Assert.Equal(12, json.GetProperty("shardsPerRegion").GetInt32());
        Assert.Equal(3e9, json.GetProperty("storageGrowthBytesPerDay").GetDouble(), 1);
    }

    [Theory]
    [InlineData("4", 4.0)]
    [InlineData("80:20", 4.0)]
    [InlineData("1:1", 1.0)]
    [InlineData("0:1", 0.0)]
    public async Task Read_write_ratio_accepts_both_spellings(string ratio, double readsPerWrite)
    {
        var result = await _cli.RunAsync("capacity", "--users", "1000", "--read-write-ratio", ratio, "-o", "json");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(readsPerWrite, result.Json().GetProperty("inputs").GetProperty("readsPerWrite").GetDouble(), 1e-9);
    }

    [Fact]
    public async Task The_table_shows_each_figure_with_its_formula_on_stdout()
    {
        var result = await _cli.RunAsync("capacity", "--users", "1000000");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Capacity plan for 1,000,000 users", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("users × dau", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("2,360", result.Stdout, StringComparison.Ordinal); // DB operations, all regions
        Assert.ThrowsAny<JsonException>(() => JsonDocument.Parse(result.Stdout));
    }

    [Theory]
    [InlineData("--users", "capacity", "--users", "-5")]
    [InlineData("--dau", "capacity", "--users", "100", "--dau", "1.5")]
    [InlineData("--peak-concurrency", "capacity", "--users", "100", "--peak-concurrency", "-0.1")]
    [InlineData("--cache-hit", "capacity", "--users", "100", "--cache-hit", "2")]
    [InlineData("--replicas", "capacity", "--users", "100", "--regions", "2", "--replicas", "3")]
    [InlineData("--read-write-ratio", "capacity", "--users", "100", "--read-write-ratio", "lots")]
    [InlineData("--users", "capacity")]
    [InlineData("--users", "capacity", "--users", "many")]
    [InlineData("--output", "capacity", "--users", "100", "-o", "xml")]
    [InlineData("--frobnicate", "capacity", "--users", "100", "--frobnicate")]
    [InlineData("nosuchcommand", "nosuchcommand")]
    public async Task Bad_input_is_a_usage_error_naming_the_culprit(string culprit, params string[] args)
    {
        var result = await _cli.RunAsync(args);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(culprit, result.Stderr, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
    }
}
