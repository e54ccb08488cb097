using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Geo.Cli.CommandLine;
using Spectre.Console;

namespace Geo.Cli.Capacity;

/// <summary><c>geoctl capacity</c>: the back-of-envelope plan from a user count.</summary>
internal static class CapacityCommand
{
    private static readonly CapacityInputs Defaults = new() { Users = 1 };

    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var users = new Option<long>("--users") { Description = "Registered users.", Required = true, HelpName = "N" };
        var dau = Fraction("--dau", "Share of users active per day (rule of thumb: 1-10%).", Defaults.DailyActiveRatio);
        var peak = Fraction("--peak-concurrency", "Share of daily active users online at the peak (rule of thumb: 1-5%).", Defaults.PeakConcurrencyRatio);
        var rps = Number("--rps-per-user", "API requests per second per concurrent user (0.2 gives 10M users -> 10,000 RPS, the top of the usual estimate).", Defaults.RpsPerUser);
        var ratio = new Option<double>("--read-write-ratio")
        {
            Description = "Reads to writes, as READS:WRITES (80:20) or reads per write (4) (typical web traffic: ~80% reads).",
            HelpName = "R:W",
            DefaultValueFactory = _ => Defaults.ReadsPerWrite,
            CustomParser = ParseReadWriteRatio,
        };
        var amplification = Number("--db-amplification", "Database operations per API request before the cache (rule of thumb: 2-4x, ~3x).", Defaults.DbAmplification);
        var cacheHit = Fraction("--cache-hit", "Share of reads Redis serves (caching typically cuts DB load 60-80%).", Defaults.CacheHitRatio);
        var changeLog = Number("--changelog-ops", "Change-log operations per write at the origin (the outbox append).", Defaults.ChangeLogOpsPerWrite);
        var shardCapacity = Number("--shard-capacity", "Operations/s one shard sustains (a tuned Postgres: roughly 10,000-50,000 TPS; 'geoctl bench shard' will measure yours).", Defaults.ShardCapacity);
        var regions = new Option<int>("--regions") { Description = "Regions; users spread evenly over them.", DefaultValueFactory = _ => Defaults.Regions, HelpName = "N" };
        var replicas = new Option<int>("--replicas") { Description = "Regions in a user's replica set (same jurisdiction).", DefaultValueFactory = _ => Defaults.ReplicaSetSize, HelpName = "N" };
        var headroom = Number("--headroom", "Capacity above peak, as a fraction (common practice: 20-30%).", Defaults.Headroom);
        var dataPerDau = Number("--data-per-dau-kb", "New data per daily active user per day, kB (rule of thumb: 100 KB).", Defaults.DataPerActiveUserKb);

        var command = new Command("capacity", "Back-of-envelope capacity plan: DAU, peak users, RPS, database operations/s, shards per region, storage growth.")
        {
            users, dau, peak, rps, ratio, amplification, cacheHit, changeLog, shardCapacity, regions, replicas, headroom, dataPerDau,
        };
        command.SetAction(parse =>
        {
            var context = new CommandContext(parse, host, globals);
            var inputs = new CapacityInputs
            {
                Users = parse.GetValue(users),
                DailyActiveRatio = parse.GetValue(dau),
                PeakConcurrencyRatio = parse.GetValue(peak),
                RpsPerUser = parse.GetValue(rps),
                ReadsPerWrite = parse.GetValue(ratio),
                DbAmplification = parse.GetValue(amplification),
                CacheHitRatio = parse.GetValue(cacheHit),
                ChangeLogOpsPerWrite = parse.GetValue(changeLog),
                ShardCapacity = parse.GetValue(shardCapacity),
                Regions = parse.GetValue(regions),
                ReplicaSetSize = parse.GetValue(replicas),
                Headroom = parse.GetValue(headroom),
                DataPerActiveUserKb = parse.GetValue(dataPerDau),
            };
            var errors = inputs.Validate();
            if (errors.Count > 0)
            {
                throw GeoCliException.Usage(string.Join(Environment.NewLine + "       ", errors));
            }

            var plan = CapacityModel.Plan(inputs);
            if (context.Json)
            {
                context.WriteJson(plan);
            }
            else
            {
                Render(context.Stdout, plan);
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static void Render(IAnsiConsole console, CapacityPlan plan)
    {
        var table = new Table { Title = new TableTitle($"Capacity plan for {plan.Inputs.Users:N0} users") }
            .AddColumn("Figure")
            .AddColumn(new TableColumn("Value").RightAligned())
            .AddColumn("Unit")
            .AddColumn("Formula");
        foreach (var row in plan.Rows)
        {
            table.AddRow(Markup.Escape(row.Label), Format(row.Value, row.Unit), UnitLabel(row.Unit), Markup.Escape(row.Formula));
        }

        console.Write(table);
        var i = plan.Inputs;
        console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"Assumptions: dau {i.DailyActiveRatio}, peak-concurrency {i.PeakConcurrencyRatio}, rps-per-user {i.RpsPerUser}, reads per write {i.ReadsPerWrite}, db-amplification {i.DbAmplification}, cache-hit {i.CacheHitRatio}, changelog-ops {i.ChangeLogOpsPerWrite}, shard-capacity {i.ShardCapacity:N0} ops/s, regions {i.Regions}, replicas {i.ReplicaSetSize}, headroom {i.Headroom}, data-per-dau-kb {i.DataPerActiveUserKb}. Sources: docs/capacity.md.")));
    }

    private static string Format(double value, string unit) => unit switch
    {
        "ratio" => value.ToString("P1", CultureInfo.InvariantCulture),
        _ when unit.StartsWith("bytes", StringComparison.Ordinal) => Bytes(value),
        _ => value.ToString(value >= 100 || value == Math.Floor(value) ? "N0" : "N1", CultureInfo.InvariantCulture),
    };

    // Byte figures carry their unit in the value ("1.83 TB"), so the column says only the period.
    private static string UnitLabel(string unit) => unit switch
    {
        "bytes/day" => "per day",
        "bytes/year" => "per year",
        "ratio" => "",
        _ => unit,
    };

    private static string Bytes(double bytes)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
        var i = 0;
        while (bytes >= 1000 && i < units.Length - 1)
        {
            bytes /= 1000;
            i++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{bytes:0.##} {units[i]}");
    }

    private static double ParseReadWriteRatio(ArgumentResult result)
    {
        var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        var parts = text.Split(':');
        if (parts.Length is 1 or 2
            && parts.All(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) && v >= 0))
        {
            var reads = double.Parse(parts[0], CultureInfo.InvariantCulture);
            var writes = parts.Length == 2 ? double.Parse(parts[1], CultureInfo.InvariantCulture) : 1;
            if (writes > 0)
            {
                return reads / writes;
            }
        }

        result.AddError($"--read-write-ratio: '{text}' is not a ratio; write READS:WRITES with writes above 0 (e.g. 80:20) or reads per write (e.g. 4).");
        return 0;
    }

    private static Option<double> Fraction(string name, string description, double defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = "0..1" };

    private static Option<double> Number(string name, string description, double defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue, HelpName = "N" };
}
