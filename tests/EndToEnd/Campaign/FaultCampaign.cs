using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Geo.Testing.Services;

namespace Geo.EndToEnd.Campaign;

/// <summary>Size of one campaign: how many fault cycles and how long each fault lasts.</summary>
public sealed record CampaignProfile(int Seed, int Cycles, TimeSpan FaultLength, TimeSpan ConvergeWithin)
{
    /// <summary>What <c>./geo test</c> runs; <c>GEO_CAMPAIGN_SEED</c> and <c>GEO_CAMPAIGN_CYCLES</c> override (the soak).</summary>
    public static CampaignProfile FromEnvironment() => new(
        int.TryParse(Environment.GetEnvironmentVariable("GEO_CAMPAIGN_SEED"), CultureInfo.InvariantCulture, out var seed) ? seed : 17,
        int.TryParse(Environment.GetEnvironmentVariable("GEO_CAMPAIGN_CYCLES"), CultureInfo.InvariantCulture, out var cycles) ? cycles : 4,
        TimeSpan.FromSeconds(2),
        TimeSpan.FromSeconds(10));
}

/// <summary>What a campaign measured and what its checkers found.</summary>
public sealed record CampaignResult(int Seed, IReadOnlyList<string> Faults, int Acknowledged, int Unknown, int Retries, long CounterValue,
    int CounterAcknowledged, TimeSpan? ConvergedAfterLastHeal, IReadOnlyList<string> Violations);

/// <summary>
/// A seeded fault campaign on the running <see cref="GeoSystem"/> (eu-west, eu-central, us-east with two edges): per
/// cycle one fault — SIGKILL, SIGSTOP or a planned restart of a directory, API, replicator or edge, chosen by the seed —
/// while writers go through the edge pool: acknowledged document writes with an Idempotency-Key each (retried with the
/// same key), concurrent writes of one shared key from two writers, counter increments with keys. After the last heal the
/// checkers run: every acknowledged write present in both eu regions (lost writes), the shared key's winner equal in both
/// (LWW), the counter between its acknowledged and its possibly-applied increments and equal in both (duplicate effects of
/// retries), the time to converge, and no row of the eu user in us-east (residency canary). Not yet: partitions between
/// regions or towards Postgres/Redis (no fault proxies on those links in this system), skewed clocks, added latency.
/// </summary>
public sealed class FaultCampaign(GeoSystem system, CampaignProfile profile)
{
    private static readonly string[] Kinds = ["RegionService", "Replicator", "ShardDirectory", "EdgeRouter"];
    private static readonly string[] Faults = ["kill", "stop", "restart"];

    private readonly Random _random = new(profile.Seed);
    private readonly Dictionary<string, string> _acknowledged = new(StringComparer.Ordinal);
    private readonly List<string> _violations = [];
    private int _unknown;
    private int _retries;
    private int _counterAcknowledged;
    private int _counterUnknown;

    public async Task<CampaignResult> RunAsync(CancellationToken ct)
    {
        var (client, _) = system.CreateEdgePoolClient();
        using var _client = client;
        var (user, home) = await Http.CreateUserAsync(client, "eu");
        await WriteAsync(client, user, "seed", "{\"v\":0}", "seed-" + user, ct);
        if (!await Http.UntilAsync(async () => await system.Topology.SumOverShardsAsync("eu-central", "SELECT count(*) FROM documents WHERE user_id = @u", user) == 1, TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("eu-central did not receive the campaign user within 30 s");
        }

        using var stop = new CancellationTokenSource();
        var workers = new List<Task>
        {
            Task.Run(() => DocumentsAsync(client, user, 0, stop.Token), CancellationToken.None),
            Task.Run(() => DocumentsAsync(client, user, 1, stop.Token), CancellationToken.None),
            Task.Run(() => CounterAsync(client, user, stop.Token), CancellationToken.None),
        };

        var faults = new List<string>();
        var lastHeal = Stopwatch.StartNew();
        for (var cycle = 0; cycle < profile.Cycles; cycle++)
        {
            var kind = Kinds[_random.Next(Kinds.Length)];
            var fault = Faults[_random.Next(Faults.Length)];
            var region = _random.Next(2) == 0 ? "eu-west" : "eu-central";
            var target = kind == "EdgeRouter" ? system.Edges[_random.Next(system.Edges.Count)] : system.Service(kind, region);
            faults.Add($"{fault} {kind}{(kind == "EdgeRouter" ? "" : " " + region)}");
            await Task.Delay(TimeSpan.FromMilliseconds(_random.Next(300, 1000)), ct);
            switch (fault)
            {
                case "kill":
                    await target.StopAsync();
                    await Task.Delay(profile.FaultLength, ct);
                    await target.StartAsync(system.Topology.ReadyTimeout, ct);
                    break;
                case "stop":
                    await target.SuspendAsync();
                    await Task.Delay(profile.FaultLength, ct);
                    await target.ResumeAsync();
                    break;
                default:
                    await target.TerminateAsync(TimeSpan.FromSeconds(60));
                    await target.StartAsync(system.Topology.ReadyTimeout, ct);
                    break;
            }

            lastHeal.Restart();
        }

        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        // Convergence: both eu regions serve every acknowledged write, the same shared winner and the same counter. The
        // time is taken at the end of the first passing check (which reads every acknowledged document from both regions),
        // so it is an upper bound.
        var converged = await ConvergeAsync(user, profile.ConvergeWithin, ct);
        TimeSpan? after = converged ? lastHeal.Elapsed : null;
        if (!converged)
        {
            await CheckOnceAsync(user, record: true, ct);
        }

        var counter = await CounterValueAsync("eu-west", user, ct);
        if (counter < _counterAcknowledged || counter > _counterAcknowledged + _counterUnknown)
        {
            _violations.Add($"counter reads {counter}; acknowledged increments {_counterAcknowledged}, unknown outcomes {_counterUnknown} (duplicate or lost effects)");
        }

        var residency = await system.Topology.SumOverShardsAsync("us-east", "SELECT (SELECT count(*) FROM documents WHERE user_id = @u) + (SELECT count(*) FROM change_log WHERE user_id = @u)", user);
        if (residency != 0)
        {
            _violations.Add($"residency: us-east holds {residency} rows of the eu user {user}");
        }

        _ = home;
        return new CampaignResult(profile.Seed, faults, _acknowledged.Count, _unknown, _retries, counter, _counterAcknowledged, after, _violations);
    }

    private async Task DocumentsAsync(HttpClient client, string user, int writer, CancellationToken stop)
    {
        for (var i = 0; i < 100_000 && !stop.IsCancellationRequested; i++)
        {
            var shared = i % 5 == 4;
            var key = shared ? "shared" : $"w{writer}-{i}";
            var body = $"{{\"w\":{writer},\"i\":{i}}}";
            var outcome = await WriteAsync(client, user, key, body, $"c{profile.Seed}-{user}-{writer}-{i}", CancellationToken.None);
            lock (_acknowledged)
            {
                if (outcome == true && !shared)
                {
                    _acknowledged[key] = body;
                }
                else if (outcome is null)
                {
                    _unknown++;
                }
            }

            await Task.Delay(15, CancellationToken.None);
        }
    }

    private async Task CounterAsync(HttpClient client, string user, CancellationToken stop)
    {
        for (var i = 0; i < 100_000 && !stop.IsCancellationRequested; i++)
        {
            var outcome = await SendWithRetriesAsync(client, () => new HttpRequestMessage(HttpMethod.Post, new Uri($"/v1/users/{user}/counters/hits", UriKind.Relative))
            {
                Content = Http.Json("{\"delta\":1}"),
            }, $"n{profile.Seed}-{user}-{i}");
            if (outcome == true)
            {
                Interlocked.Increment(ref _counterAcknowledged);
            }
            else if (outcome is null)
            {
                Interlocked.Increment(ref _counterUnknown);
            }

            await Task.Delay(30, CancellationToken.None);
        }
    }

    private Task<bool?> WriteAsync(HttpClient client, string user, string key, string body, string idempotencyKey, CancellationToken ct)
        => SendWithRetriesAsync(client, () => new HttpRequestMessage(HttpMethod.Put, new Uri($"/v1/users/{user}/docs/campaign/{key}", UriKind.Relative))
        {
            Content = Http.Json(body),
        }, idempotencyKey);

    /// <summary>True when acknowledged (2xx); null when every try failed (it may or may not have applied). Retries keep the key.</summary>
    private async Task<bool?> SendWithRetriesAsync(HttpClient client, Func<HttpRequestMessage> build, string idempotencyKey)
    {
        for (var attempt = 0; attempt < 8; attempt++)
        {
            if (attempt > 0)
            {
                Interlocked.Increment(ref _retries);
                await Task.Delay(250 * attempt, CancellationToken.None);
            }

            try
            {
                using var request = build();
                request.Headers.Add("Idempotency-Key", idempotencyKey);
                using var response = await client.SendAsync(request, CancellationToken.None);
                if (response.IsSuccessStatusCode)
                {
                    return true;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }
        }

        return null;
    }

    private async Task<bool> ConvergeAsync(string user, TimeSpan limit, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (await CheckOnceAsync(user, record: false, ct))
            {
                return true;
            }

            await Task.Delay(250, ct);
        }

        return false;
    }

    /// <summary>One pass of the lost-write and LWW checkers over both eu regions; records violations when asked.</summary>
    private async Task<bool> CheckOnceAsync(string user, bool record, CancellationToken ct)
    {
        var ok = true;
        var shared = new List<string?>();
        var counters = new List<long>();
        foreach (var region in new[] { "eu-west", "eu-central" })
        {
            using var http = TestCredentials.CreateClient(system.Api(region).BaseAddress, TimeSpan.FromSeconds(10));
            var missing = 0;
            foreach (var (key, body) in _acknowledged)
            {
                using var response = await http.GetAsync(new Uri($"/v1/users/{user}/docs/campaign/{key}", UriKind.Relative), ct);
                if (response.StatusCode != HttpStatusCode.OK || !Same(await response.Content.ReadAsStringAsync(ct), body))
                {
                    missing++;
                }
            }

            if (missing > 0)
            {
                ok = false;
                if (record)
                {
                    _violations.Add($"lost acknowledged writes: {region} lacks {missing} of {_acknowledged.Count}");
                }
            }

            using var winner = await http.GetAsync(new Uri($"/v1/users/{user}/docs/campaign/shared", UriKind.Relative), ct);
            shared.Add(winner.Headers.ETag?.Tag);
            counters.Add(await CounterValueAsync(region, user, ct));
        }

        if (shared.Distinct().Count() != 1 || counters.Distinct().Count() != 1)
        {
            ok = false;
            if (record)
            {
                _violations.Add($"not converged: shared key versions {string.Join(" / ", shared)}, counters {string.Join(" / ", counters)}");
            }
        }

        return ok;
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
        using var a = JsonDocument.Parse(served);
        using var b = JsonDocument.Parse(written);
        return a.RootElement.GetProperty("w").GetInt32() == b.RootElement.GetProperty("w").GetInt32()
            && a.RootElement.GetProperty("i").GetInt32() == b.RootElement.GetProperty("i").GetInt32();
    }
}
