namespace Geo.Cli.CommandLine;

/// <summary>What geoctl sees of its process: streams, environment, working directory, and whether a person is at a terminal.</summary>
/// <remarks>Tests build one with string writers to run the whole CLI in-process.</remarks>
internal sealed class CliHost
{
    /// <summary>Data: tables and JSON.</summary>
    public required TextWriter Out { get; init; }

    /// <summary>Progress, information and errors.</summary>
    public required TextWriter Error { get; init; }

    /// <summary>True when stdin and stdout are terminals, so geoctl may prompt.</summary>
    public required bool IsInteractive { get; init; }

    /// <summary>True when stdout is a terminal (colours, terminal width).</summary>
    public required bool OutIsTerminal { get; init; }

    /// <summary>True when stderr is a terminal (live progress bars).</summary>
    public required bool ErrorIsTerminal { get; init; }

    public required Func<string, string?> GetEnvironmentVariable { get; init; }

    public required string CurrentDirectory { get; init; }

    public static CliHost FromProcess() => new()
    {
        Out = Console.Out,
        Error = Console.Error,
        IsInteractive = !Console.IsInputRedirected && !Console.IsOutputRedirected,
        OutIsTerminal = !Console.IsOutputRedirected,
        ErrorIsTerminal = !Console.IsErrorRedirected,
        GetEnvironmentVariable = Environment.GetEnvironmentVariable,
        CurrentDirectory = Environment.CurrentDirectory,
    };
}
