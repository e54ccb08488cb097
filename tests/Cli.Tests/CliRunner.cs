using System.Text.Json;
using Geo.Cli.CommandLine;

namespace Geo.Cli.Tests;

/// <summary>Runs geoctl in-process with captured stdout and stderr, a private environment and no terminal.</summary>
internal sealed class CliRunner
{
    /// <summary>The invocation's environment; <c>GEO_PKI</c> is the test run's CA folder, so geoctl presents its admin certificate.</summary>
    public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal) { ["GEO_PKI"] = Geo.Testing.Security.TestPki.Directory };

    public string CurrentDirectory { get; set; } = Path.GetTempPath();

    public async Task<CliResult> RunAsync(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var host = new CliHost
        {
            Out = stdout,
            Error = stderr,
            IsInteractive = false,
            OutIsTerminal = false,
            ErrorIsTerminal = false,
            GetEnvironmentVariable = name => Environment.GetValueOrDefault(name),
            CurrentDirectory = CurrentDirectory,
        };
        var exitCode = await GeoCtl.RunAsync(args, host, TestContext.Current.CancellationToken);
        return new CliResult(exitCode, stdout.ToString(), stderr.ToString());
    }
}

internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public JsonElement Json()
    {
        using var document = JsonDocument.Parse(Stdout);
        return document.RootElement.Clone();
    }

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}
