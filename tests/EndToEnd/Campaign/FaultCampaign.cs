using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Geo.Testing.Faults;
using Geo.Testing.Services;
using Npgsql;

namespace Geo.EndToEnd.Campaign;

/// <summary>
/// Size of one campaign: at least <see cref="Cycles"/> fault cycles and at least <see cref="Writes"/> acknowledged writes
/// (cycles go on until both are reached, or <see cref="TimeLimit"/> has passed), <see cref="Writers"/> document writers
/// through the edges, and the bound on convergence after the last heal.
/// </summary>
public sealed record CampaignProfile(int Seed, int Cycles, int Writes, int Writers, TimeSpan TimeLimit, TimeSpan ConvergeWithin)
{
    /// <summary>
    /// What <c>./geo test</c> runs (seed 17, 6 cycles, 2 writers); <c>GEO_CAMPAIGN_SEED</c>, <c>GEO_CAMPAIGN_CYCLES</c>,
    /// <c>GEO_CAMPAIGN_WRITES</c>, <c>GEO_CAMPAIGN_WRITERS</c> and <c>GEO_CAMPAIGN_MINUTES</c> override (the soak).
    /// </summary>
    public static CampaignProfile FromEnvironment() => new(
        Number("GEO_CAMPAIGN_SEED", 17),
        Number("GEO_CAMPAIGN_CYCLES", 6),
        Number("GEO_CAMPAIGN_WRITES", 0),
        Number("GEO_CAMPAIGN_WRITERS", 2),
        TimeSpan.FromMinutes(Number("GEO_CAMPAIGN_MINUTES", 10)),
        TimeSpan.FromSeconds(10));

    private static int Number(string name, int fallback)
        => int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var value) ? value : fallback;
}

/// <summary>What a campaign measured and what its checkers found.</summary>
public sealed record CampaignResult(int Seed, IReadOnlyList<string> Faults, int Acknowledged, int Unknown, int Retries, long CounterValue,
    int CounterAcknowledged, int SharedAcknowledged, int OverwrittenConcurrently, int ConflictEntries, TimeSpan? ConvergedAfterLastHeal,
    TimeSpan WorkersDrained, TimeSpan ServedCheck, TimeSpan SlowestRequest, IReadOnlyList<TimeSpan> CycleConvergence, int ResidencyHits, int Quarantined, TimeSpan Duration, IReadOnlyList<string> Violations,
    int RefusedAmbiguously = 0, int AppliedThoughRefused = 0)
{
    /// <summary>Every acknowledged write: documents (shared key included) and counter increments.</summary>
    public int AcknowledgedWrites => Acknowledged + SharedAcknowledged + CounterAcknowledged;
}

/// <summary>
/// A seeded fault campaign on the running <see cref="GeoSystem"/> (eu-west, eu-central, us-east with two edges). Per cycle
/// one fault, the family in turn (process, link, region partition, latency, data store) and the rest chosen by the seed:
/// SIGKILL, SIGSTOP or a planned restart of a directory, API, replicator or edge; a partition (refused, or a silent
/// blackhole) between a region's services and its Postgres, Redis or directory (<see cref="RegionLinks"/>); eu-west cut
/// from eu-central's replicators both ways; 50–200 ms added on every link of a region; SIGKILL or SIGSTOP of Postgres or
/// Redis (one server each for all regions here). Meanwhile writers go through the edge pool: acknowledged document writes
/// with an Idempotency-Key each (retried with the same key), counter increments with keys, and conditional writes
/// (If-Match) of one shared key, also from a writer at eu-central's own API, so the shared key is written concurrently in
/// two regions. eu-central runs with its clock skewed (<see cref="GeoSystem.SkewedRegion"/>). After the last heal the
/// checkers run: every acknowledged write served by both eu regions (lost writes); the shared key's winner equal in both
/// (LWW); every acknowledged shared write overwritten by a concurrent one in some region's conflict log (conflict-log
/// completeness, docs/decisions.md); the counter between its acknowledged and its possibly applied increments and equal
/// in both (duplicate effects of retries); the time to converge; no row of the eu user in us-east (residency canary); no
/// change quarantined for clock skew.
/// </summary>
public sealed class FaultCampaign(GeoSystem system, CampaignProfile profile)
{
    private const string Shared = "shared";
    private const string FailoverHeader = "Geo-Failover";
    private static readonly string[] Kinds = ["RegionService", "Replicator", "ShardDirectory", "EdgeRouter"];
    private static readonly string[] Regions = ["eu-west", "eu-central"];

    private readonly Random _random = new(profile.Seed);
    private readonly Dictionary<string, string> _acknowledged = new(StringComparer.Ordinal);
    private readonly HashSet<string> _sharedAcknowledged = new(StringComparer.Ordinal);
    private readonly HashSet<string> _replacedByAcknowledged = new(StringComparer.Ordinal);
    private readonly HashSet<string> _replacedByUnknown = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _refusedAmbiguously = new(StringComparer.Ordinal); // idempotency key → version read
    private readonly List<string> _violations = [];
    private readonly List<TimeSpan> _cycleConvergence = [];
    private int _unknown;
    private int _retries;
    private int _counterAcknowledged;
    private int _counterUnknown;
    private TimeSpan _slowest;

    private int AcknowledgedWrites
    {
        get
        {
            lock (_acknowledged)
            {
                return _acknowledged.Count + _sharedAcknowledged.Count + Volatile.Read(ref _counterAcknowledged);
            }
        }
    }

    public async Task<CampaignResult> RunAsync(CancellationToken ct)
    {
        var started = Stopwatch.StartNew();
        var quarantinedBefore = Quarantined();
        var (client, _) = system.CreateEdgePoolClient();
        using var _client = client;
        using var central = TestCredentials.CreateClient(system.Api("eu-central").BaseAddress, TimeSpan.FromSeconds(10));
        var (user, _) = await Http.CreateUserAsync(client, "eu");
        await WriteAsync(client, user, "seed", "{\"w\":-1,\"i\":0}", "seed-" + user, ifMatch: null, CancellationToken.None);
        var (seeded, seedVersion, _) = await WriteAsync(client, user, Shared, "{\"w\":-1,\"i\":0}", "seed-shared-" + user, ifMatch: null, CancellationToken.None);
        if (seeded != true || seedVersion is null)
        {
            throw new InvalidOperationException("the shared key could not be written before the campaign");
        }

        _sharedAcknowledged.Add(seedVersion);
        if (!await Http.UntilAsync(async () => await system.Topology.SumOverShardsAsync("eu-central", "SELECT count(*) FROM documents WHERE user_id = @u", user) == 2, TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("eu-central did not receive the campaign user within 30 s");
        }

        if (Environment.GetEnvironmentVariable("GEO_CAMPAIGN_NEGATIVE") == "drop-conflict-log")
        {
            await DropConflictLogAsync(); // negative control of the conflict-log checker: the system no longer logs conflicts
        }

        using var stop = new CancellationTokenSource();
        var workers = new List<Task>();
        for (var writer = 0; writer < profile.Writers; writer++)
        {
            var w = writer;
            workers.Add(Task.Run(() => DocumentsAsync(client, user, w, stop.Token), CancellationToken.None));
        }

        workers.Add(Task.Run(() => CounterAsync(client, user, stop.Token), CancellationToken.None));
        workers.Add(Task.Run(() => SharedAsync(central, user, profile.Writers, stop.Token), CancellationToken.None));

        var faults = new List<string>();
        var lastHeal = Stopwatch.StartNew();
        for (var cycle = 0; started.Elapsed < profile.TimeLimit && (cycle < profile.Cycles || AcknowledgedWrites < profile.Writes); cycle++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(_random.Next(300, 1000)), ct);
            faults.Add(await InjectAndHealAsync(cycle, ct));
            lastHeal.Restart();
            await File.AppendAllTextAsync(Path.Combine(AppContext.BaseDirectory, "campaign-progress.txt"), string.Create(CultureInfo.InvariantCulture,
                $"{DateTime.UtcNow:O} seed {profile.Seed} cycle {cycle + 1}: {faults[^1]}; {AcknowledgedWrites} acknowledged writes, {started.Elapsed.TotalSeconds:0} s\n"), ct);
            if (profile.Cycles > 20 && cycle % 10 == 9)
            {
                // In a soak, every ten cycles: the time until both regions hold every write acknowledged before this heal,
                // under the running writers (the end measures full agreement without them).
                var caughtUp = await ConvergedAsync(user, lastHeal, TimeSpan.FromSeconds(60), agree: false, ct);
                _cycleConvergence.Add(caughtUp ?? TimeSpan.FromSeconds(60));
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        await stop.CancelAsync();
        var draining = Stopwatch.StartNew();
        await Task.WhenAll(workers);
        var drain = draining.Elapsed;

        // Convergence: both eu regions store every acknowledged write, the same version of every key and the same counter
        // (read from the shards, so a pass is quick); measured from the last heal. Then the served values are checked
        // through both regional APIs (caches included).
        var after = await ConvergedAsync(user, lastHeal, TimeSpan.FromSeconds(40), agree: true, ct);
        if (after is null || after > profile.ConvergeWithin)
        {
            _violations.Add($"not converged within {profile.ConvergeWithin.TotalSeconds} s of the last heal (took {after?.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) ?? "more than 40"} s)");
        }

        var checking = Stopwatch.StartNew();
        var winner = await ServedCheckAsync(user, ct);
        var servedCheck = checking.Elapsed;
        var (overwritten, entries) = await ConflictLogCheckAsync(user, winner);

        var counter = await CounterValueAsync("eu-west", user, ct);
        if (counter < _counterAcknowledged || counter > _counterAcknowledged + _counterUnknown)
        {
            _violations.Add($"counter reads {counter}; acknowledged increments {_counterAcknowledged}, unknown outcomes {_counterUnknown} (duplicate or lost effects)");
        }

        var residency = await system.Topology.SumOverShardsAsync("us-east", "SELECT (SELECT count(*) FROM documents WHERE user_id = @u) + (SELECT count(*) FROM change_log WHERE user_id = @u) + (SELECT count(*) FROM conflicts WHERE user_id = @u)", user);
        if (residency != 0)
        {
            _violations.Add($"residency: us-east holds {residency} rows of the eu user {user}");
        }

        var quarantined = Quarantined() - quarantinedBefore;
        if (quarantined != 0)
        {
            _violations.Add($"{quarantined} changes quarantined for clock skew (eu-central runs {GeoSystem.SkewSeconds} s ahead; the bound is 5 s)");
        }

        return new CampaignResult(profile.Seed, faults, _acknowledged.Count, _unknown, _retries, counter, _counterAcknowledged, _sharedAcknowledged.Count,
            overwritten, entries, after, drain, servedCheck, _slowest, _cycleConvergence, (int)residency, quarantined, started.Elapsed, _violations,
            RefusedAmbiguously, AppliedThoughRefused);
    }

    private int Quarantined() => system.AllLogs.Count(l => l.Contains("Quarantined a change", StringComparison.Ordinal));

    /// <summary>Injects the fault of <paramref name="cycle"/> and heals it; returns its description.</summary>
    private async Task<string> InjectAndHealAsync(int cycle, CancellationToken ct)
    {
        var region = Regions[_random.Next(Regions.Length)];
        var length = TimeSpan.FromMilliseconds(_random.Next(2000, 4000));
        switch (cycle % 5)
        {
            case 1:
            {
                var links = system.Links(region);
                var (name, proxy) = _random.Next(3) switch
                {
                    0 => ("Postgres", links.Postgres),
                    1 => ("Redis", links.Redis),
                    _ => ("directory", links.Directory),
                };
                var mode = _random.Next(2) == 0 ? FaultMode.Cut : FaultMode.Blackhole;
                proxy.Mode = mode;
                await Task.Delay(length, ct);
                links.HealAll();
                return $"{(mode == FaultMode.Cut ? "partition" : "blackhole")} {region} services<->{name} {length.TotalSeconds:0.0} s";
            }

            case 2:
            {
                var mode = _random.Next(2) == 0 ? FaultMode.Cut : FaultMode.Blackhole;
                foreach (var r in Regions)
                {
                    system.Links(r).Replicator.Mode = mode;
                }

                await Task.Delay(length, ct);
                foreach (var r in Regions)
                {
                    system.Links(r).HealAll();
                }

                return $"{(mode == FaultMode.Cut ? "partition" : "blackhole")} eu-west<->eu-central replication {length.TotalSeconds:0.0} s";
            }

            case 3:
            {
                var latency = TimeSpan.FromMilliseconds(_random.Next(50, 201));
                var links = system.Links(region);
                foreach (var proxy in links.All)
                {
                    proxy.Latency = latency;
                }

                await Task.Delay(length, ct);
                links.HealAll();
                return $"latency {latency.TotalMilliseconds} ms on every link of {region} {length.TotalSeconds:0.0} s";
            }

            case 4 when system.Postgres.CanFault && system.Redis.Mode == "local-binaries":
            {
                var kill = _random.Next(2) == 0;
                var postgres = cycle / 5 % 2 == 0; // Postgres and Redis in turn, so the short profile has a Postgres fault
                if (postgres)
                {
                    await (kill ? system.Postgres.KillAsync() : system.Postgres.SuspendAsync());
                    await Task.Delay(length, ct);
                    await (kill ? system.Postgres.RestartAsync() : system.Postgres.ResumeAsync());
                    NpgsqlConnection.ClearAllPools(); // the campaign's own connections to the killed server
                }
                else
                {
                    await (kill ? system.Redis.StopAsync(ct) : system.Redis.SuspendAsync());
                    await Task.Delay(length, ct);
                    await (kill ? system.Redis.StartAsync(ct) : system.Redis.ResumeAsync());
                }

                return $"{(kill ? "kill" : "stop")} {(postgres ? "Postgres" : "Redis")} {length.TotalSeconds:0.0} s";
            }

            default:
            {
                var kind = Kinds[_random.Next(Kinds.Length)];
                var fault = _random.Next(3);
                var target = kind == "EdgeRouter" ? system.Edges[_random.Next(system.Edges.Count)] : system.Service(kind, region);
                switch (fault)
                {
                    case 0:
                        await target.StopAsync();
                        await Task.Delay(TimeSpan.FromSeconds(2), ct);
                        await target.StartAsync(system.Topology.ReadyTimeout, ct);
                        break;
                    case 1:
                        await target.SuspendAsync();
                        await Task.Delay(TimeSpan.FromSeconds(2), ct);
                        await target.ResumeAsync();
                        break;
                    default:
                        await target.TerminateAsync(TimeSpan.FromSeconds(60));
                        await target.StartAsync(system.Topology.ReadyTimeout, ct);
                        break;
                }

                return $"{(fault == 0 ? "kill" : fault == 1 ? "stop" : "restart")} {kind}{(kind == "EdgeRouter" ? "" : " " + region)}";
            }
        }
    }

    private async Task DocumentsAsync(HttpClient client, string user, int writer, CancellationToken stop)
    {
        for (var i = 0; i < 1_000_000 && !stop.IsCancellationRequested; i++)
        {
            if (i % 5 == 4)
            {
                await SharedWriteAsync(client, user, writer, i, stop);
            }
            else
            {
                var key = $"w{writer}-{i}";
                var body = $"{{\"w\":{writer},\"i\":{i}}}";
                var (outcome, _, _) = await WriteAsync(client, user, key, body, $"c{profile.Seed}-{user}-{writer}-{i}", ifMatch: null, stop);
                lock (_acknowledged)
                {
                    if (outcome == true)
                    {
                        _acknowledged[key] = body;
                    }
                    else
                    {
                        _unknown++;
                    }
                }
            }

            await Task.Delay(15, CancellationToken.None);
        }
    }

    /// <summary>The writer at eu-central's own API: only conditional writes of the shared key.</summary>
    private async Task SharedAsync(HttpClient central, string user, int writer, CancellationToken stop)
    {
        for (var i = 0; i < 1_000_000 && !stop.IsCancellationRequested; i++)
        {
            await SharedWriteAsync(central, user, writer, i, stop);
            await Task.Delay(60, CancellationToken.None);
        }
    }

    /// <summary>
    /// Reads the shared key and writes it with If-Match on the version read, so an acknowledged write knowingly replaced
    /// that version (the history the conflict-log checker needs, docs/decisions.md); a 412 is no write.
    /// </summary>
    private async Task SharedWriteAsync(HttpClient client, string user, int writer, int i, CancellationToken stop)
    {
        string? read;
        try
        {
            using var response = await client.GetAsync(new Uri($"/v1/users/{user}/docs/campaign/{Shared}", UriKind.Relative), stop);
            read = response.IsSuccessStatusCode ? response.Headers.ETag?.Tag : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
        {
            read = null;
        }

        if (read is null)
        {
            return;
        }

        var idempotencyKey = $"s{profile.Seed}-{user}-{writer}-{i}";
        var (outcome, version, ambiguous) = await WriteAsync(client, user, Shared, $"{{\"w\":{writer},\"i\":{i}}}", idempotencyKey, read, stop);
        lock (_acknowledged)
        {
            if (outcome == true && version is not null)
            {
                _sharedAcknowledged.Add(version);
                _replacedByAcknowledged.Add(read);
            }
            else if (outcome is null)
            {
                _replacedByUnknown.Add(read); // it may have been applied, and then it replaced the version read knowingly
            }
            else if (ambiguous)
            {
                // Refused after a try without an answer, or by a failover region: an earlier execution in the other
                // region may have applied it (ConflictLogCheckAsync looks for its stored outcome).
                _refusedAmbiguously[idempotencyKey] = read;
            }
        }
    }

    private async Task CounterAsync(HttpClient client, string user, CancellationToken stop)
    {
        for (var i = 0; i < 1_000_000 && !stop.IsCancellationRequested; i++)
        {
            var (outcome, _, _) = await SendWithRetriesAsync(client, () => new HttpRequestMessage(HttpMethod.Post, new Uri($"/v1/users/{user}/counters/hits", UriKind.Relative))
            {
                Content = Http.Json("{\"delta\":1}"),
            }, $"n{profile.Seed}-{user}-{i}", stop);
            if (outcome == true)
            {
                Interlocked.Increment(ref _counterAcknowledged);
            }
            else
            {
                Interlocked.Increment(ref _counterUnknown);
            }

            await Task.Delay(30, CancellationToken.None);
        }
    }

    private Task<(bool? Outcome, string? ETag, bool Ambiguous)> WriteAsync(HttpClient client, string user, string key, string body, string idempotencyKey, string? ifMatch, CancellationToken stop)
        => SendWithRetriesAsync(client, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, new Uri($"/v1/users/{user}/docs/campaign/{key}", UriKind.Relative)) { Content = Http.Json(body) };
            if (ifMatch is not null)
            {
                request.Headers.IfMatch.Add(EntityTagHeaderValue.Parse(ifMatch));
            }

            return request;
        }, idempotencyKey, stop);

    /// <summary>
    /// True when acknowledged (2xx, with its ETag); false when refused (412); null when no try got an answer, or the
    /// campaign stopped between tries (it may or may not have applied). Retries keep the key. <c>Ambiguous</c> says that
    /// a refusal may hide an applied write: an earlier try got no answer (or a 5xx), or the refusal came from a failover
    /// region (<c>Geo-Failover</c>: the edge re-sends a keyed request that failed before its answer to the next region).
    /// An Idempotency-Key is stored in the region that ran the request, so a try that applied in eu-west and a retry
    /// that ran in eu-central are two executions: the second finds the first's version replicated and answers 412.
    /// </summary>
    private async Task<(bool? Outcome, string? ETag, bool Ambiguous)> SendWithRetriesAsync(HttpClient client, Func<HttpRequestMessage> build, string idempotencyKey, CancellationToken stop)
    {
        var unanswered = false;
        for (var attempt = 0; attempt < 8; attempt++)
        {
            if (attempt > 0)
            {
                if (stop.IsCancellationRequested)
                {
                    return (null, null, true);
                }

                Interlocked.Increment(ref _retries);
                await Task.Delay(250 * attempt, CancellationToken.None);
            }

            var sent = Stopwatch.GetTimestamp();
            try
            {
                using var request = build();
                request.Headers.Add("Idempotency-Key", idempotencyKey);
                // The stop cancels a request in flight too (its outcome is unknown): the writers end at once, so the time
                // to converge after the last heal is the system's, not that of a slow request's wind-down.
                using var response = await client.SendAsync(request, stop);
                if (response.IsSuccessStatusCode)
                {
                    return (true, response.Headers.ETag?.Tag, unanswered);
                }

                if (response.StatusCode == HttpStatusCode.PreconditionFailed)
                {
                    return (false, null, unanswered || response.Headers.Contains(FailoverHeader));
                }

                unanswered |= (int)response.StatusCode >= 500;
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
            {
                unanswered = true;
            }
            finally
            {
                var took = Stopwatch.GetElapsedTime(sent);
                lock (_violations)
                {
                    _slowest = took > _slowest ? took : _slowest;
                }
            }
        }

        return (null, null, true);
    }

    /// <summary>
    /// Polls the eu shards until both hold every write acknowledged so far and, when <paramref name="agree"/>, the same
    /// version of every key and the same counter; the time since <paramref name="since"/> started, or null.
    /// </summary>
    private async Task<TimeSpan?> ConvergedAsync(string user, Stopwatch since, TimeSpan limit, bool agree, CancellationToken ct)
    {
        Dictionary<string, string> expected;
        lock (_acknowledged)
        {
            expected = new Dictionary<string, string>(_acknowledged, StringComparer.Ordinal);
        }

        while (since.Elapsed < limit)
        {
            try
            {
                var west = await StoredAsync("eu-west", user, ct);
                var central = await StoredAsync("eu-central", user, ct);
                var equal = west.Counter == central.Counter && west.Documents.Count == central.Documents.Count
                    && west.Documents.All(d => central.Documents.TryGetValue(d.Key, out var c) && c == d.Value);
                if ((equal || !agree)
                    && expected.All(e => west.Documents.TryGetValue(e.Key, out var stored) && Same(stored.Body, e.Value))
                    && expected.All(e => central.Documents.TryGetValue(e.Key, out var stored) && Same(stored.Body, e.Value)))
                {
                    return since.Elapsed;
                }
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                NpgsqlConnection.ClearAllPools(); // a connection from before a Postgres kill
            }

            await Task.Delay(100, ct);
        }

        return null;
    }

    /// <summary>The campaign documents (key → version and body) and the counter of a region, read from its shards.</summary>
    private async Task<(Dictionary<string, (string Version, string Body)> Documents, long Counter)> StoredAsync(string region, string user, CancellationToken ct)
    {
        var documents = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        long counter = 0;
        foreach (var (_, cs) in system.Topology.Shards.Where(s => s.Key.StartsWith(region + "-", StringComparison.Ordinal)))
        {
            await using var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync(ct);
            await using (var command = new NpgsqlCommand("SELECT key, version_hlc, version_origin, coalesce(body::text, '') FROM documents WHERE user_id = @u AND collection = 'campaign'", connection))
            {
                command.Parameters.AddWithValue("u", user);
                await using var rows = await command.ExecuteReaderAsync(ct);
                while (await rows.ReadAsync(ct))
                {
                    documents[rows.GetString(0)] = (Tag(rows.GetInt64(1), rows.GetString(2)), rows.GetString(3));
                }
            }

            await using (var command = new NpgsqlCommand("SELECT coalesce(sum(incr) - sum(decr), 0)::bigint FROM counters WHERE user_id = @u AND name = 'hits'", connection))
            {
                command.Parameters.AddWithValue("u", user);
                counter += (long)(await command.ExecuteScalarAsync(ct))!;
            }
        }

        return (documents, counter);
    }

    private static string Tag(long hlc, string origin) => string.Create(CultureInfo.InvariantCulture, $"\"{hlc:x16}-{origin}\"");

    /// <summary>
    /// Lost-write and LWW checkers through both regional APIs (what clients are served, caches included): every acknowledged
    /// document (all of them up to 5,000, else the last 1,000 and a seeded sample of 4,000), and the shared key's version,
    /// equal in both regions. Returns that version.
    /// </summary>
    private async Task<string?> ServedCheckAsync(string user, CancellationToken ct)
    {
        var keys = _acknowledged.Keys.Order(StringComparer.Ordinal).ToList();
        if (keys.Count > 5_000)
        {
            var sample = new Random(profile.Seed);
            keys = [.. keys.OrderBy(k => KeyIndex(k)).TakeLast(1_000).Concat(keys.OrderBy(_ => sample.Next()).Take(4_000)).Distinct()];
        }

        var winners = new List<string?>();
        foreach (var region in Regions)
        {
            using var http = TestCredentials.CreateClient(system.Api(region).BaseAddress, TimeSpan.FromSeconds(10));
            var missing = 0;
            await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (key, token) =>
            {
                using var response = await http.GetAsync(new Uri($"/v1/users/{user}/docs/campaign/{key}", UriKind.Relative), token);
                if (response.StatusCode != HttpStatusCode.OK || !Same(await response.Content.ReadAsStringAsync(token), _acknowledged[key]))
                {
                    Interlocked.Increment(ref missing);
                }
            });

            if (missing > 0)
            {
                _violations.Add($"lost acknowledged writes: {region} does not serve {missing} of the {keys.Count} acknowledged writes read");
            }

            using var winner = await http.GetAsync(new Uri($"/v1/users/{user}/docs/campaign/{Shared}", UriKind.Relative), ct);
            winners.Add(winner.Headers.ETag?.Tag);
        }

        if (winners.Distinct().Count() != 1 || winners[0] is null)
        {
            _violations.Add($"LWW: the regions serve different versions of the shared key: {string.Join(" / ", winners)}");
        }

        return winners[0];
    }

    private static int KeyIndex(string key) => int.Parse(key[(key.IndexOf('-', StringComparison.Ordinal) + 1)..], CultureInfo.InvariantCulture);

    /// <summary>
    /// Conflict-log completeness for the shared key (the definition of docs/decisions.md, as in the Replicator's partition
    /// test): an acknowledged write that is not the winner and that no acknowledged write replaced knowingly (If-Match on
    /// its version) was overwritten by a concurrent write, and must be a loser in eu-west's or eu-central's conflict log.
    /// A version that a write of unknown outcome was conditioned on is left out (that write may have replaced it knowingly).
    /// Returns the number of such overwritten writes and of conflict-log entries of the key.
    /// </summary>
    private async Task<(int Overwritten, int Entries)> ConflictLogCheckAsync(string user, string? winner)
    {
        var losers = await EuShardRowsAsync("SELECT loser_version_hlc, loser_origin FROM conflicts WHERE user_id = @u AND collection = 'campaign' AND key = @k",
            user, p => p.AddWithValue("k", Shared), (_, row) => Tag(row.GetInt64(0), row.GetString(1)));
        var logged = losers.ToHashSet(StringComparer.Ordinal);
        var entries = losers.Count;

        // A refusal that may hide an applied write (see SendWithRetriesAsync): the region that applied it stored its
        // response with its Idempotency-Key; such a write replaced the version it read knowingly.
        var appliedThoughRefused = await AppliedAmongAsync(user, _refusedAmbiguously.Keys);
        foreach (var key in appliedThoughRefused)
        {
            _replacedByAcknowledged.Add(_refusedAmbiguously[key]);
        }

        AppliedThoughRefused = appliedThoughRefused.Count;
        var overwritten = _sharedAcknowledged.Where(v => v != winner && !_replacedByAcknowledged.Contains(v) && !_replacedByUnknown.Contains(v)).ToList();
        var unlogged = overwritten.Where(v => !logged.Contains(v)).ToList();
        if (unlogged.Count > 0)
        {
            _violations.Add($"conflict log: {unlogged.Count} of {overwritten.Count} acknowledged shared writes overwritten by a concurrent write are in no conflict log: {string.Join(", ", unlogged.Take(5))}");
            foreach (var version in unlogged.Take(3))
            {
                _violations.Add(await TraceAsync(user, version));
            }
        }

        return (overwritten.Count, entries);
    }

    /// <summary>Shared writes answered 412 after a try without an answer (or by a failover region) that had in fact applied.</summary>
    public int AppliedThoughRefused { get; private set; }

    /// <summary>Shared writes answered 412 after a try without an answer, or by a failover region.</summary>
    public int RefusedAmbiguously => _refusedAmbiguously.Count;

    /// <summary>The idempotency keys among <paramref name="keys"/> whose stored response in eu-west or eu-central is a 2xx.</summary>
    private async Task<HashSet<string>> AppliedAmongAsync(string user, IEnumerable<string> keys)
    {
        var wanted = keys.ToArray();
        if (wanted.Length == 0)
        {
            return [];
        }

        var applied = await EuShardRowsAsync("SELECT key FROM idempotency WHERE user_id = @u AND key = ANY(@k) AND state = 'done' AND status BETWEEN 200 AND 299",
            user, p => p.AddWithValue("k", wanted), (_, row) => row.GetString(0));
        return applied.ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// What both eu regions still hold about an overwritten write that no conflict log has (for the failure report): the
    /// shared key's row, conflict and change-log entries naming the version, the idempotency record that answered it,
    /// and the services' log lines naming it.
    /// </summary>
    private async Task<string> TraceAsync(string user, string version)
    {
        var tag = version.Trim('"');
        var hex = tag[..16];
        var hlc = long.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var origin = tag[17..];
        var lines = new List<string> { $"trace of {version} (hlc {hlc}, {DateTimeOffset.FromUnixTimeMilliseconds(hlc >> 16):O}):" };
        lines.AddRange(await EuShardRowsAsync("""
                SELECT 'document ' || version_hlc || '-' || version_origin || ' prev ' || coalesce(prev_version_hlc || '-' || prev_version_origin, '-') || ' ' || coalesce(body::text, 'tombstone')
                  FROM documents WHERE user_id = @u AND collection = 'campaign' AND key = 'shared'
                UNION ALL SELECT 'conflict ' || id || ' winner ' || winner_version_hlc || '-' || winner_origin || ' loser ' || loser_version_hlc || '-' || loser_origin || ' at ' || detected_at
                  FROM conflicts WHERE user_id = @u AND key = 'shared' AND ((winner_version_hlc = @h AND winner_origin = @o) OR (loser_version_hlc = @h AND loser_origin = @o))
                UNION ALL SELECT 'change ' || seq || ' origin ' || origin || ' ' || version_hlc || '-' || version_origin || ' prev ' || coalesce(prev_version_hlc || '-' || prev_version_origin, '-') || ' at ' || created_at
                  FROM change_log WHERE user_id = @u AND key = 'shared' AND ((version_hlc = @h AND version_origin = @o) OR (prev_version_hlc = @h AND prev_version_origin = @o))
                UNION ALL SELECT 'idempotency ' || key || ' ' || coalesce(status::text, state) || ' ' || coalesce(response_headers::text, '')
                  FROM idempotency WHERE user_id = @u AND response_headers::text LIKE '%' || @x || '%'
                """, user, p =>
        {
            p.AddWithValue("h", hlc);
            p.AddWithValue("o", origin);
            p.AddWithValue("x", hex);
        }, (shard, row) => $"  {shard}: {row.GetString(0)}"));

        lines.AddRange(system.AllLogs.Where(l => l.Contains(hex, StringComparison.OrdinalIgnoreCase) || l.Contains(hlc.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))
            .Take(20).Select(l => "  log: " + l));
        return string.Join('\n', lines);
    }

    /// <summary>
    /// The rows of <paramref name="sql"/> on every eu shard, each read by <paramref name="read"/> with its shard's id;
    /// <c>@u</c> is the user, <paramref name="bind"/> adds the other parameters.
    /// </summary>
    private async Task<List<T>> EuShardRowsAsync<T>(string sql, string user, Action<NpgsqlParameterCollection> bind, Func<string, NpgsqlDataReader, T> read)
    {
        var found = new List<T>();
        foreach (var (shard, cs) in system.Topology.Shards.Where(s => s.Key.StartsWith("eu-", StringComparison.Ordinal)))
        {
            await using var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("u", user);
            bind(command.Parameters);
            await using var rows = await command.ExecuteReaderAsync();
            while (await rows.ReadAsync())
            {
                found.Add(read(shard, rows));
            }
        }

        return found;
    }

    /// <summary>Negative control only: a trigger on every eu shard that silently skips conflict-log inserts.</summary>
    private async Task DropConflictLogAsync()
    {
        foreach (var (_, cs) in system.Topology.Shards.Where(s => s.Key.StartsWith("eu-", StringComparison.Ordinal)))
        {
            await using var connection = new NpgsqlConnection(cs);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("""
                CREATE OR REPLACE FUNCTION campaign_negative_control() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
                CREATE OR REPLACE TRIGGER campaign_negative_control BEFORE INSERT ON conflicts FOR EACH ROW EXECUTE FUNCTION campaign_negative_control();
                """, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    private async Task<long> CounterValueAsync(string region, string user, CancellationToken ct)
    {
        using var http = TestCredentials.CreateClient(system.Api(region).BaseAddress, TimeSpan.FromSeconds(10));
        using var response = await http.GetAsync(new Uri($"/v1/users/{user}/counters/hits", UriKind.Relative), ct);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return document.RootElement.GetProperty("value").GetInt64();
    }

    private static bool Same(string served, string written)
    {
        if (served.Length == 0)
        {
            return false;
        }

        using var a = JsonDocument.Parse(served);
        using var b = JsonDocument.Parse(written);
        return a.RootElement.GetProperty("w").GetInt32() == b.RootElement.GetProperty("w").GetInt32()
            && a.RootElement.GetProperty("i").GetInt32() == b.RootElement.GetProperty("i").GetInt32();
    }
}
