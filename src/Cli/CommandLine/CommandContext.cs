using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Geo.Core.Tls;
using Geo.Core.Topology;
using Spectre.Console;

namespace Geo.Cli.CommandLine;

/// <summary>One command invocation: the parsed global options and the consoles, with the checks every command shares.</summary>
internal sealed class CommandContext
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    private readonly CliHost _host;
    private readonly GlobalOptions _globals;
    private readonly ParseResult _parse;
    private TlsCredentials? _admin;

    public CommandContext(ParseResult parse, CliHost host, GlobalOptions globals)
    {
        _parse = parse;
        _host = host;
        _globals = globals;
        Stdout = CreateConsole(host.Out, host.OutIsTerminal);
        Stderr = CreateConsole(host.Error, host.ErrorIsTerminal);
    }

    public bool Json => _parse.GetValue(_globals.Output) == "json";

    public bool DryRun => _parse.GetValue(_globals.DryRun);

    public bool Yes => _parse.GetValue(_globals.Yes);

    /// <summary>Tables for people; use only when <see cref="Json"/> is false.</summary>
    public IAnsiConsole Stdout { get; }

    /// <summary>Progress, notes and prompts.</summary>
    public IAnsiConsole Stderr { get; }

    public T Value<T>(Option<T> option) => _parse.GetValue(option)!;

    public void WriteJson<T>(T value) => _host.Out.WriteLine(JsonSerializer.Serialize(value, JsonOptions));

    /// <summary>A plain line of data on stdout, never wrapped (Spectre wraps markup at the console width).</summary>
    public void WriteLine(string text) => _host.Out.WriteLine(text);

    /// <summary>A line of information for people, on stderr so that stdout stays data.</summary>
    public void Info(string markup) => Stderr.MarkupLine(markup);

    /// <summary>
    /// The admin credentials geoctl presents to the services (mutual TLS, <c>geo://global/admin</c>): from <c>--pki</c>,
    /// <c>$GEO_PKI</c>, or <c>.geo/pki</c> above the current directory. Stops with <see cref="ExitCodes.Refused"/> when
    /// there are none. The services verify the certificate; a wrong one is refused by them, not here.
    /// </summary>
    public TlsCredentials Admin(string action)
    {
        if (_admin is not null)
        {
            return _admin;
        }

        var dir = _parse.GetValue(_globals.Pki)?.FullName
            ?? NonEmpty(_host.GetEnvironmentVariable(GlobalOptions.PkiVariable))
            ?? (FindUpwards(_host.CurrentDirectory, Path.Combine(".geo", "pki", GeoPki.CaCertificateFile)) is { } ca ? Path.GetDirectoryName(ca) : null);
        var refusal = $"Refusing to {action}: geoctl presents the admin certificate (geo://global/admin) to the services";
        if (dir is null)
        {
            throw GeoCliException.Refused($"{refusal}, and there is none: pass --pki DIR or set {GlobalOptions.PkiVariable} (./geo up writes .geo/pki; geoctl auth certs makes one).");
        }

        dir = Path.GetFullPath(dir, _host.CurrentDirectory);
        try
        {
            return _admin = TlsCredentials.FromDirectory(dir, PeerIdentity.Admin);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw GeoCliException.Refused($"{refusal}; {dir} holds no readable {GeoPki.FileStem(PeerIdentity.Admin)}.crt/.key and {GeoPki.CaCertificateFile} ({e.Message}).");
        }
    }

    /// <summary>Asks a person to confirm; <c>--yes</c> answers for them. Without a terminal and without <c>--yes</c>, refuses.</summary>
    public async Task ConfirmAsync(string question, CancellationToken ct)
    {
        if (Yes)
        {
            return;
        }

        if (!_host.IsInteractive)
        {
            throw GeoCliException.Refused($"{question} Not confirmed: stdin/stdout is not a terminal, so geoctl cannot ask; pass --yes to confirm.");
        }

        if (!await Stderr.ConfirmAsync(question, defaultValue: false, ct))
        {
            throw GeoCliException.Refused("Not confirmed; nothing was changed.");
        }
    }

    /// <summary>An environment variable of the invocation (replaced by tests).</summary>
    public string? Environment(string name) => NonEmpty(_host.GetEnvironmentVariable(name));

    /// <summary>The invocation's working directory, for relative paths.</summary>
    public string CurrentDirectory => _host.CurrentDirectory;

    /// <summary>The topology file: <c>--topology</c>, else <c>$GEO_TOPOLOGY</c>, else config/topology.local.json above the current directory.</summary>
    public string TopologyPath()
    {
        var path = _parse.GetValue(_globals.Topology)?.FullName
            ?? NonEmpty(_host.GetEnvironmentVariable(GlobalOptions.TopologyVariable))
            ?? FindUpwards(_host.CurrentDirectory, Path.Combine("config", "topology.local.json"))
            ?? throw GeoCliException.NotFound(
                $"No topology: none given, {GlobalOptions.TopologyVariable} is not set, and no config/topology.local.json above {_host.CurrentDirectory}. Pass --topology FILE.");
        path = Path.GetFullPath(path, _host.CurrentDirectory);
        return File.Exists(path)
            ? path
            : throw GeoCliException.NotFound($"Topology file '{path}' does not exist; pass --topology FILE or set {GlobalOptions.TopologyVariable}.");
    }

    /// <summary>Loads and validates the topology; an invalid one stops with <see cref="ExitCodes.InvalidTopology"/> listing every error.</summary>
    public GeoTopology LoadTopology()
    {
        var path = TopologyPath();
        try
        {
            return TopologyLoader.Load(path);
        }
        catch (TopologyException e)
        {
            throw new GeoCliException(ExitCodes.InvalidTopology, $"{path}: {e.Message}", e);
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    internal static string? FindUpwards(string start, string relative)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static IAnsiConsole CreateConsole(TextWriter writer, bool isTerminal)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = isTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = isTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = isTerminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!isTerminal)
        {
            // Redirected output has no width; wide enough that tables in files and pipes do not wrap.
            console.Profile.Width = 160;
        }

        return console;
    }
}
