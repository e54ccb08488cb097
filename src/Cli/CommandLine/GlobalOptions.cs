using System.CommandLine;

namespace Geo.Cli.CommandLine;

/// <summary>Options every geoctl command accepts (recursive on the root command).</summary>
internal sealed class GlobalOptions
{
    public const string TopologyVariable = "GEO_TOPOLOGY";
    public const string PkiVariable = "GEO_PKI";

    public Option<string> Output { get; } = new("--output", "-o")
    {
        Description = "Output format: table (for people) or json (machine-readable, on stdout).",
        DefaultValueFactory = _ => "table",
        HelpName = "table|json",
        Recursive = true,
    };

    public Option<FileInfo?> Topology { get; } = new("--topology")
    {
        Description = $"Topology JSON file. Default: ${TopologyVariable}, else config/topology.local.json found by walking up from the current directory.",
        HelpName = "file",
        Recursive = true,
    };

    public Option<bool> DryRun { get; } = new("--dry-run")
    {
        Description = "Show what would change and change nothing.",
        Recursive = true,
    };

    public Option<bool> Yes { get; } = new("--yes", "-y")
    {
        Description = "Answer yes to confirmations; required to change state when there is no terminal to prompt on.",
        Recursive = true,
    };

    public Option<DirectoryInfo?> Pki { get; } = new("--pki")
    {
        Description = $"Folder holding the admin certificate (global-admin.crt, global-admin.key) and the CA (ca.crt) geoctl presents to the services over mutual TLS. Default: ${PkiVariable}, else .geo/pki above the current directory (./geo up writes it).",
        HelpName = "dir",
        Recursive = true,
    };

    public GlobalOptions()
    {
        Output.AcceptOnlyFromAmong("table", "json");
    }

    public void AddTo(RootCommand root)
    {
        root.Add(Output);
        root.Add(Topology);
        root.Add(DryRun);
        root.Add(Yes);
        root.Add(Pki);
    }
}
