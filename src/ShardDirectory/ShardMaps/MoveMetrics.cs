using System.Diagnostics.Metrics;
using Dapper;
using Geo.ShardDirectory.Hosting;
using Geo.ShardDirectory.Users;
using Npgsql;

namespace Geo.ShardDirectory.ShardMaps;

/// <summary>
/// Shard moves and fences of this directory's region as metrics, read from the directory database every
/// <see cref="Interval"/>: moves in progress by phase, the age of the oldest one's current step (a move stuck in a
/// phase shows here), moves completed and cancelled, and buckets fenced in the current map.
/// </summary>
internal sealed partial class MoveMetrics : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    private const string Sql = """
        SELECT phase AS Phase, count(*) AS Moves,
               coalesce(max(extract(epoch FROM (now() - updated_at))), 0)::float8 AS OldestStepAgeSeconds
        FROM shard_moves WHERE region = @Region GROUP BY phase;
        SELECT coalesce(cardinality(fenced_buckets), 0) FROM shard_maps WHERE region = @Region;
        """;

    private static readonly string[] ActivePhases = [MoveRow.Begun, MoveRow.Fenced, MoveRow.Flipped];

    private readonly NpgsqlDataSource _db;
    private readonly string _region;
    private readonly ILogger<MoveMetrics> _logger;
    private volatile Snapshot _snapshot = new([], 0);

    public MoveMetrics(NpgsqlDataSource db, DirectorySite site, IMeterFactory meters, ILogger<MoveMetrics> logger)
    {
        _db = db;
        _region = site.Region.Id;
        _logger = logger;
        var meter = meters.Create(UserCache.MeterName);
        meter.CreateObservableUpDownCounter("geo.directory.moves.active", () => ActivePhases.Select(p =>
            new Measurement<long>(_snapshot.Count(p), new KeyValuePair<string, object?>("phase", p))),
            "{move}", "Shard moves in progress (begun, fenced, flipped), by phase (the region is the scrape target's).");
        meter.CreateObservableGauge("geo.directory.moves.oldest_step_age", () =>
            new Measurement<double>(_snapshot.OldestActiveStepAge),
            "s", "Seconds since the oldest move in progress last changed phase; 0 when none is in progress.");
        meter.CreateObservableCounter("geo.directory.moves.finished", () => new[] { MoveRow.Completed, MoveRow.Cancelled }.Select(p =>
            new Measurement<long>(_snapshot.Count(p), new KeyValuePair<string, object?>("phase", p))),
            "{move}", "Shard moves that ended, by outcome (completed, cancelled).");
        meter.CreateObservableUpDownCounter("geo.directory.fenced_buckets", () =>
            new Measurement<long>(_snapshot.FencedBuckets),
            "{bucket}", "Buckets fenced (taking no writes) in the current shard map of the region.");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                await using var connection = await _db.OpenConnectionAsync(stoppingToken);
                using var grid = await connection.QueryMultipleAsync(new CommandDefinition(Sql, new { Region = _region }, cancellationToken: stoppingToken));
                var phases = (await grid.ReadAsync<PhaseRow>()).ToList();
                var fenced = await grid.ReadSingleOrDefaultAsync<int>();
                _snapshot = new Snapshot(phases, fenced);
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
            {
                LogReadFailed(_logger, ex.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(EventId = EventIds.MoveMetricsReadFailed, Level = LogLevel.Warning, Message = "Could not read move metrics: {Reason}")]
    private static partial void LogReadFailed(ILogger logger, string reason);

    private sealed record PhaseRow(string Phase, long Moves, double OldestStepAgeSeconds);

    private sealed record Snapshot(List<PhaseRow> Phases, int FencedBuckets)
    {
        public long Count(string phase) => Phases.Where(p => p.Phase == phase).Sum(p => p.Moves);

        public double OldestActiveStepAge => Phases.Where(p => ActivePhases.Contains(p.Phase)).Select(p => p.OldestStepAgeSeconds).DefaultIfEmpty(0).Max();
    }
}
