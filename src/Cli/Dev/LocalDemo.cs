using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Geo.Cli.Auth;
using Geo.Core.Topology;
using Geo.ServiceDefaults.Auth;
using Geo.Storage.Reports;
using Npgsql;

namespace Geo.Cli.Dev;

/// <summary>
/// <c>./geo demo</c>: a scripted walk-through of the whole story on the running local system — placement, replication,
/// residency, failover, a planned restart, and authorization. Every call carries a service token of the local
/// development issuer and presents the admin certificate; the first failed step stops it with <c>FAILED: …</c>.
/// </summary>
internal sealed class LocalDemo(LocalPaths paths, GeoTopology topology, LocalServices services, TextWriter output, TextWriter error)
{
    private const string Doc = "/docs/notes/demo";

    public async Task<int> RunAsync()
    {
        var usEdge = services.Find("EdgeRouter", "us-east");
        var euCentralApi = services.Find("RegionService", "eu-central").Url;
        var euWest = services.Find("RegionService", "eu-west");
        if (!await services.ReadyAsync(usEdge))
        {
            throw new LocalSystemException("the local system is not running: ./geo up");
        }

        DevelopmentIssuer.EnsureKeyFiles(paths.Secrets);
        var issuer = DevelopmentIssuer.Load(paths.Secrets);
        var token = issuer.ServiceToken(AuthCommands.ServiceScopes, AuthCommands.Reach(topology), TimeSpan.FromMinutes(15));
        using var http = paths.AdminClient(TimeSpan.FromSeconds(30));
        try
        {
            await Step("1. An eu user created through the us-east edge lands in an eu region");
            var (user, home) = await CreateUserAsync(http, usEdge.Url, token);
            if (home?.StartsWith("eu-", StringComparison.Ordinal) != true)
            {
                throw Failed("home region is not in eu");
            }

            await Line($"geo-home-region: {home}");
            await Line($"user {user}");

            await Step("2. A write through the edge is read back from the other eu region after replication");
            using (var put = await SendAsync(http, HttpMethod.Put, new Uri(usEdge.Url, $"/v1/users/{user}{Doc}"), token, """{"step":2}"""))
            {
                put.EnsureSuccessStatusCode();
            }

            if (!await UntilAsync(30, async () => await StepOfAsync(http, new Uri(euCentralApi, $"/v1/users/{user}{Doc}"), token) == 2))
            {
                throw Failed("eu-central did not receive the write within 30 s");
            }

            await Line("eu-central serves {\"step\": 2}");

            await Step("3. The us databases hold nothing of that user");
            foreach (var (_, shard) in topology.Regions.Values.Where(r => r.Jurisdiction == "us").SelectMany(r => r.Shards))
            {
                var db = new NpgsqlConnectionStringBuilder(shard).Database;
                var count = await RowsOfAsync(shard, user);
                if (count != 0)
                {
                    throw Failed($"{db} holds {count} rows of {user}");
                }

                await Line($"{db}: 0 rows");
            }

            await Step("4. eu-west's API stops: the edge fails over to eu-central for reads and writes");
            if (services.Pid(euWest.Name) is { } pid)
            {
                await Geo.Dev.ChildProcesses.SignalAsync(pid, "TERM");
            }

            KeptHeaders? failover = null;
            if (!await UntilAsync(30, async () =>
                {
                    using var response = await SendAsync(http, HttpMethod.Put, new Uri(usEdge.Url, $"/v1/users/{user}{Doc}"), token, """{"step":4}""");
                    failover = new KeptHeaders(response);
                    return response.IsSuccessStatusCode && Header(response, "geo-region")?.StartsWith("eu-central", StringComparison.Ordinal) == true;
                }))
            {
                throw Failed("no failover write to eu-central within 30 s");
            }

            if (failover!.Lines("geo-failover") is not { Count: > 0 } flags)
            {
                throw Failed("the failover was not flagged");
            }

            foreach (var flag in flags)
            {
                await Line(flag);
            }

            var value = await StepOfAsync(http, new Uri(usEdge.Url, $"/v1/users/{user}{Doc}"), token);
            if (value != 4)
            {
                throw Failed($"read after failover returned step {value}");
            }

            await Line($"write and read served by eu-central (step {value})");

            await Step("5. eu-west comes back and both eu regions converge");
            await services.StopAsync(euWest.Name); // waits until the drained process is gone
            if ((await File.ReadAllTextAsync(paths.Log(euWest.Name))).Contains("Unhandled exception", StringComparison.Ordinal))
            {
                throw Failed($"eu-west's API crashed while stopping; see .geo/logs/{euWest.Name}.log");
            }

            await Line("eu-west's API drained and exited cleanly");
            await services.StartAsync(euWest);
            if (!await UntilAsync(60, () => services.ReadyAsync(euWest)))
            {
                throw Failed("eu-west did not come back within 60 s");
            }

            if (!await UntilAsync(30, async () => await StepOfAsync(http, new Uri(euWest.Url, $"/v1/users/{user}{Doc}"), token) == 4))
            {
                throw Failed("eu-west did not converge to step 4 within 30 s");
            }

            await Line("eu-west and eu-central both serve {\"step\": 4}");

            await Step("6. Every call needs a token, and a user's token opens that user only");
            var url = new Uri(usEdge.Url, $"/v1/users/{user}{Doc}");
            var code = await StatusAsync(http, url, null);
            if (code != 401)
            {
                throw Failed($"a call without a token answered {code}, not 401");
            }

            var (other, _) = await CreateUserAsync(http, usEdge.Url, token);
            code = await StatusAsync(http, url, issuer.UserToken(other, TimeSpan.FromMinutes(5)));
            if (code != 403)
            {
                throw Failed($"another user's token answered {code}, not 403");
            }

            code = await StatusAsync(http, url, issuer.UserToken(user, TimeSpan.FromMinutes(5)));
            if (code != 200)
            {
                throw Failed($"the user's own token answered {code}, not 200");
            }

            await Line("no token: 401; another user's token: 403; the user's own token: 200");
            await output.WriteAsync("\ndemo: every step passed\n");
            return 0;
        }
        catch (DemoFailedException e)
        {
            await output.FlushAsync();
            await error.WriteLineAsync($"FAILED: {e.Message}");
            return 1;
        }
    }

    private static DemoFailedException Failed(string message) => new(message);

    private Task Step(string text) => output.WriteAsync($"\n== {text}\n");

    private Task Line(string text) => output.WriteLineAsync(text);

    private static string? Header(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>Creates an eu user; its id and the home region the edge placed it in.</summary>
    private static async Task<(string User, string? Home)> CreateUserAsync(HttpClient http, Uri edge, string token)
    {
        using var response = await SendAsync(http, HttpMethod.Post, new Uri(edge, "/v1/users"), token, """{"residency":"eu"}""");
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (body.RootElement.GetProperty("userId").GetString()!, Header(response, "geo-home-region"));
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, Uri url, string? token, string? json = null)
    {
        using var request = new HttpRequestMessage(method, url);
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("authorization", "Bearer " + token);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await http.SendAsync(request);
    }

    private static async Task<int> StatusAsync(HttpClient http, Uri url, string? token)
    {
        using var response = await SendAsync(http, HttpMethod.Get, url, token);
        return (int)response.StatusCode;
    }

    /// <summary>The document's <c>step</c>, or null when it cannot be read (not there yet, not answering).</summary>
    private static async Task<int?> StepOfAsync(HttpClient http, Uri url, string token)
    {
        try
        {
            using var response = await SendAsync(http, HttpMethod.Get, url, token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return null;
            }

            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return body.RootElement.TryGetProperty("step", out var step) && step.TryGetInt32(out var n) ? n : null;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null;
        }
    }

    private static async Task<long> RowsOfAsync(string shard, string user)
    {
        await using var connection = new NpgsqlConnection(shard);
        await connection.OpenAsync();
        return await ShardReport.UserRowsAsync(connection, user, CancellationToken.None);
    }

    /// <summary>Retries <paramref name="attempt"/> every 0.5 s until it succeeds or <paramref name="seconds"/> have passed; a call that throws counts as not yet.</summary>
    private static async Task<bool> UntilAsync(int seconds, Func<Task<bool>> attempt)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await attempt())
                {
                    return true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }

            if (clock.Elapsed >= TimeSpan.FromSeconds(seconds))
            {
                return false;
            }

            await Task.Delay(500);
        }
    }

    /// <summary>The response headers of one attempt, kept after the response is disposed.</summary>
    private sealed class KeptHeaders(HttpResponseMessage response)
    {
        private readonly List<(string Name, string Value)> _headers = [.. response.Headers.SelectMany(h => h.Value.Select(v => (h.Key.ToLowerInvariant(), v)))];

        public List<string> Lines(string prefix) => [.. _headers.Where(h => h.Name.StartsWith(prefix, StringComparison.Ordinal)).Select(h => $"{h.Name}: {h.Value}")];
    }

    private sealed class DemoFailedException : Exception
    {
        public DemoFailedException()
        {
        }

        public DemoFailedException(string message)
            : base(message)
        {
        }

        public DemoFailedException(string message, Exception innerException)
            : base(message, innerException)
        {
        }
    }
}
