using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Geo.Cli.CommandLine;
using Geo.Core.Clock;
using Geo.Storage;
using Geo.Storage.Migrations;
using Geo.Storage.Reports;
using Npgsql;
using Spectre.Console;

namespace Geo.Cli.Bench;

/// <summary>
/// <c>geoctl bench shard</c>: measures the operations/s one shard database sustains with Geo's own reads and writes
/// (a document read; a document write with its change-log append, in one transaction), the figure
/// <c>geoctl capacity --shard-capacity</c> takes.
/// </summary>
internal static class BenchCommands
{
    private const string UserPrefix = "geoctl-bench-";

    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var connection = new Option<string>("--connection") { Description = "Connection string of a scratch database on the Postgres to measure (it gets Geo's schema; must hold no Geo data).", Required = true, HelpName = "connection-string" };
        var duration = new Option<double>("--duration") { Description = "Seconds to measure, after 2 s of warm-up (1 to 600).", DefaultValueFactory = _ => 10, HelpName = "seconds" };
        var concurrency = new Option<int>("--concurrency") { Description = "Concurrent workers, each with its own connection (1 to 256).", DefaultValueFactory = _ => 16, HelpName = "N" };
        var readsPerWrite = new Option<double>("--reads-per-write") { Description = "Reads per write (0 = writes only; 4 = 80% reads).", DefaultValueFactory = _ => 4, HelpName = "R" };
        var users = new Option<int>("--users") { Description = "Distinct users the operations spread over (1 to 1,000,000).", DefaultValueFactory = _ => 10_000, HelpName = "N" };
        var shard = new Command("shard", "Measure the operations/s one shard sustains on your Postgres, for 'geoctl capacity --shard-capacity'.") { connection, duration, concurrency, readsPerWrite, users };
        shard.SetAction((p, ct) => ShardAsync(new CommandContext(p, host, globals),
            new BenchSettings(p.GetValue(connection)!, p.GetValue(duration), p.GetValue(concurrency), p.GetValue(readsPerWrite), p.GetValue(users)), ct));
        return new Command("bench", "Measurements on your own infrastructure.") { shard };
    }

    private static async Task<int> ShardAsync(CommandContext context, BenchSettings settings, CancellationToken ct)
    {
        var errors = settings.Validate();
        if (errors.Count > 0)
        {
            throw GeoCliException.Usage(string.Join(Environment.NewLine, errors));
        }

        if (context.DryRun)
        {
            context.Info($"Would migrate the database to Geo's shard schema and run {settings.Concurrency} workers for {settings.Duration:F0} s ({settings.ReadsPerWrite} reads per write), then delete the bench rows.");
            return ExitCodes.Ok;
        }

        context.Admin("benchmark a database (it migrates it and writes to it)");
        await context.ConfirmAsync("Migrate this database to Geo's shard schema and write benchmark rows to it (deleted afterwards)?", ct);
        NpgsqlDataSource dataSource;
        try
        {
            var builder = new NpgsqlDataSourceBuilder(settings.Connection) { Name = "bench" };
            builder.ConnectionStringBuilder.ApplicationName ??= "geoctl-bench";
            builder.ConnectionStringBuilder.MaxPoolSize = Math.Max(builder.ConnectionStringBuilder.MaxPoolSize, settings.Concurrency + 2);
            dataSource = builder.Build();
        }
        catch (ArgumentException e)
        {
            throw GeoCliException.Usage($"--connection: {e.Message}");
        }

        await using (dataSource)
        {
            try
            {
                await ShardMigrator.MigrateAsync(dataSource, ct);
                await using var connection = await dataSource.OpenConnectionAsync(ct);
                var foreign = await ScratchShard.ForeignRowsAsync(connection, UserPrefix, ct);
                if (foreign > 0)
                {
                    throw GeoCliException.Refused($"The database holds {foreign} Geo rows that are not the bench's: point --connection at a scratch database, never at a live shard.");
                }
            }
            catch (NpgsqlException e)
            {
                throw new GeoCliException(ExitCodes.Unavailable, $"--connection: {e.Message}", e);
            }

            var store = new ShardStore("bench", "bench", dataSource, new HybridLogicalClock(TimeProvider.System, TimeSpan.FromMinutes(5)));
            var result = await RunAsync(context, store, settings, ct);
            await using (var connection = await dataSource.OpenConnectionAsync(ct))
            {
                await ScratchShard.DeleteAsync(connection, UserPrefix, ct);
            }

            if (context.Json)
            {
                context.WriteJson(result);
            }
            else
            {
                var table = new Table().AddColumns("Measure", "Value");
                table.AddRow("operations/s (per-shard capacity)", $"[bold]{result.OperationsPerSecond:F0}[/]");
                table.AddRow("reads/s", result.ReadsPerSecond.ToString("F0", CultureInfo.InvariantCulture));
                table.AddRow("writes/s", result.WritesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
                table.AddRow("latency p50 / p99 ms", $"{result.P50Ms:F1} / {result.P99Ms:F1}");
                table.AddRow("errors", result.Errors.ToString(CultureInfo.InvariantCulture));
                table.AddRow("workers, seconds", $"{result.Concurrency}, {result.Seconds:F1}");
                context.Stdout.Write(table);
                context.Info($"Use it: geoctl capacity --users N --shard-capacity {result.OperationsPerSecond:F0}");
            }

            return result.Errors > 0 ? ExitCodes.Failed : ExitCodes.Ok;
        }
    }

    private static async Task<BenchResult> RunAsync(CommandContext context, ShardStore store, BenchSettings settings, CancellationToken ct)
    {
        var warmUp = TimeSpan.FromSeconds(2);
        var measure = TimeSpan.FromSeconds(settings.Duration);
        var writeShare = 1 / (1 + settings.ReadsPerWrite);
        var started = Stopwatch.GetTimestamp();
        var body = """{"bench":true,"pad":"0123456789012345678901234567890123456789012345678901234567890123456789"}""";
        var workers = Enumerable.Range(0, settings.Concurrency).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            var latencies = new List<double>();
            long reads = 0, writes = 0, errors = 0;
            while (!ct.IsCancellationRequested)
            {
                var elapsed = Stopwatch.GetElapsedTime(started);
                if (elapsed >= warmUp + measure)
                {
                    break;
                }

                var user = UserPrefix + random.Next(settings.Users).ToString(CultureInfo.InvariantCulture);
                var write = random.NextDouble() < writeShare;
                var begun = Stopwatch.GetTimestamp();
                try
                {
                    if (write)
                    {
                        await store.PutDocumentAsync(user, "bench", "k" + random.Next(4).ToString(CultureInfo.InvariantCulture), body, ct: ct);
                    }
                    else
                    {
                        await store.GetDocumentAsync(user, "bench", "k" + random.Next(4).ToString(CultureInfo.InvariantCulture), ct);
                    }
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    if (elapsed >= warmUp)
                    {
                        errors++;
                    }

                    continue;
                }

                if (elapsed >= warmUp)
                {
                    latencies.Add(Stopwatch.GetElapsedTime(begun).TotalMilliseconds);
                    _ = write ? writes++ : reads++;
                }
            }

            return (Reads: reads, Writes: writes, Errors: errors, Latencies: latencies);
        }, ct)).ToArray();

        context.Info($"Running {settings.Concurrency} workers: {warmUp.TotalSeconds:F0} s warm-up, {measure.TotalSeconds:F0} s measured.");
        var results = await Task.WhenAll(workers);
        var seconds = measure.TotalSeconds;
        var sorted = results.SelectMany(r => r.Latencies).Order().ToArray();
        double Percentile(double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];
        long reads = results.Sum(r => r.Reads), writes = results.Sum(r => r.Writes);
        return new BenchResult(Math.Round((reads + writes) / seconds, 1), Math.Round(reads / seconds, 1), Math.Round(writes / seconds, 1),
            Math.Round(Percentile(0.5), 2), Math.Round(Percentile(0.99), 2), results.Sum(r => r.Errors), settings.Concurrency, seconds, settings.ReadsPerWrite);
    }

    private sealed record BenchSettings(string Connection, double Duration, int Concurrency, double ReadsPerWrite, int Users)
    {
        public List<string> Validate()
        {
            var errors = new List<string>();
            if (Duration is < 1 or > 600)
            {
                errors.Add($"--duration: {Duration} is out of range; use 1 to 600 seconds.");
            }

            if (Concurrency is < 1 or > 256)
            {
                errors.Add($"--concurrency: {Concurrency} is out of range; use 1 to 256.");
            }

            if (ReadsPerWrite is < 0 or > 1000 || double.IsNaN(ReadsPerWrite))
            {
                errors.Add($"--reads-per-write: {ReadsPerWrite} is out of range; use 0 to 1000.");
            }

            if (Users is < 1 or > 1_000_000)
            {
                errors.Add($"--users: {Users} is out of range; use 1 to 1,000,000.");
            }

            return errors;
        }
    }

    private sealed record BenchResult(double OperationsPerSecond, double ReadsPerSecond, double WritesPerSecond, double P50Ms, double P99Ms, long Errors,
        int Concurrency, double Seconds, double ReadsPerWrite);
}
