namespace Geo.Cli.Tests.CommandLine;

public sealed class StateChangeTests : IDisposable
{
    private readonly CliRunner _cli = new();
    private readonly TestTopologies _files = new();

    public void Dispose() => _files.Dispose();

    [Fact]
    public async Task A_state_changing_command_without_an_admin_certificate_is_refused_with_exit_4()
    {
        _cli.Environment.Remove("GEO_PKI");
        var result = await _cli.RunAsync("migrate", "--topology", _files.Local(), "--yes");

        Assert.Equal(4, result.ExitCode);
        Assert.Contains("--pki", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("GEO_PKI", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task With_an_admin_certificate_but_no_terminal_and_no_yes_it_refuses_instead_of_prompting()
    {
        var result = await _cli.RunAsync("migrate", "--topology", _files.Local());

        Assert.Equal(4, result.ExitCode);
        Assert.Contains("pass --yes", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("admin certificate", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_invalid_topology_stops_a_command_with_exit_6_and_its_errors()
    {
        var path = _files.Write("bad.json", """{ "regions": { "us-east": { "jurisdiction": "us" } } }""");

        var result = await _cli.RunAsync("migrate", "--topology", path, "--dry-run");

        Assert.Equal(6, result.ExitCode);
        Assert.Contains("regions.us-east.shards", result.Stderr, StringComparison.Ordinal);
    }
}
