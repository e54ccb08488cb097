using System.CommandLine;
using Geo.Cli.CommandLine;
using Geo.Core.Topology;
using Spectre.Console;

namespace Geo.Cli.Topology;

/// <summary><c>geoctl topology validate|show</c>.</summary>
internal static class TopologyCommands
{
    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var validate = new Command("validate", "Check the topology file and print every error, each naming the key and the fix.");
        validate.SetAction(parse => Validate(new CommandContext(parse, host, globals)));

        var show = new Command("show", "Regions, jurisdictions, endpoints and shards of the topology (passwords redacted).");
        show.SetAction(parse => Show(new CommandContext(parse, host, globals)));

        return new Command("topology", "Inspect the deployment's topology document.") { validate, show };
    }

    private static int Validate(CommandContext context)
    {
        var path = context.TopologyPath();
        IReadOnlyList<string> errors;
        GeoTopology? topology = null;
        try
        {
            topology = TopologyLoader.Load(path);
            errors = [];
        }
        catch (TopologyException e)
        {
            errors = e.Errors;
        }

        if (context.Json)
        {
            context.WriteJson(new ValidationResult(path, errors.Count == 0, topology?.Regions.Count ?? 0, topology?.Regions.Values.Sum(r => r.Shards.Count) ?? 0, errors));
        }
        else if (topology is not null)
        {
            context.WriteLine($"valid: {path}: {topology.Regions.Count} regions in {topology.Jurisdictions.Length} jurisdictions, {topology.Regions.Values.Sum(r => r.Shards.Count)} shards.");
        }
        else
        {
            context.WriteLine($"invalid: {path}: {errors.Count} error(s):");
            foreach (var error in errors)
            {
                context.WriteLine($"  - {error}");
            }
        }

        return errors.Count == 0 ? ExitCodes.Ok : ExitCodes.InvalidTopology;
    }

    private static int Show(CommandContext context)
    {
        var path = context.TopologyPath();
        var topology = context.LoadTopology();
        var view = new TopologyView(
            path,
            topology.Jurisdictions.ToDictionary(j => j, j => topology.AllowedRegions(j), StringComparer.Ordinal),
            [.. topology.Regions.Values.Select(r => new RegionView(
                r.Id,
                r.Jurisdiction,
                r.Edge.OriginalString,
                [.. r.Api.Select(a => a.OriginalString)],
                r.Directory.OriginalString,
                r.Replicator.OriginalString,
                Secrets.RedactRedis(r.Redis),
                [.. r.Shards.Select(s => new ShardView(s.Key, Secrets.RedactConnectionString(s.Value)))]))]);
        if (context.Json)
        {
            context.WriteJson(view);
            return ExitCodes.Ok;
        }

        var regions = new Table { Title = new TableTitle($"Regions ({Markup.Escape(path)})") }
            .AddColumns("Region", "Jurisdiction", "Endpoints", "Redis", "Shards");
        foreach (var r in view.Regions)
        {
            var endpoints = string.Join('\n', [$"edge        {r.Edge}", .. r.Api.Select(a => $"api         {a}"), $"directory   {r.Directory}", $"replicator  {r.Replicator}"]);
            regions.AddRow(r.Id, r.Jurisdiction, Markup.Escape(endpoints), Markup.Escape(r.Redis), Markup.Escape(string.Join('\n', r.Shards.Select(s => s.Id))));
        }

        var shards = new Table { Title = new TableTitle("Shards") }.AddColumns("Shard", "Region", "Connection");
        foreach (var r in view.Regions)
        {
            foreach (var s in r.Shards)
            {
                shards.AddRow(s.Id, r.Id, Markup.Escape(s.Connection));
            }
        }

        var jurisdictions = new Table { Title = new TableTitle("Jurisdictions (replica sets)") }.AddColumns("Jurisdiction", "Regions");
        foreach (var (jurisdiction, members) in view.Jurisdictions)
        {
            jurisdictions.AddRow(jurisdiction, string.Join(", ", members));
        }

        context.Stdout.Write(regions);
        context.Stdout.Write(shards);
        context.Stdout.Write(jurisdictions);
        return ExitCodes.Ok;
    }

    private sealed record ValidationResult(string Path, bool Valid, int Regions, int Shards, IReadOnlyList<string> Errors);

    private sealed record TopologyView(string Path, IReadOnlyDictionary<string, IReadOnlyList<string>> Jurisdictions, IReadOnlyList<RegionView> Regions);

    private sealed record RegionView(string Id, string Jurisdiction, string Edge, IReadOnlyList<string> Api, string Directory, string Replicator, string Redis, IReadOnlyList<ShardView> Shards);

    private sealed record ShardView(string Id, string Connection);
}
