using System.Diagnostics;
using System.Globalization;
using System.Net;
using Geo.Testing.Services;

namespace Geo.EndToEnd;

/// <summary>
/// A planned restart (SIGTERM, the process drains and exits, then starts again) of any one process, while a client keeps
/// writing and reading through the edges, costs the client nothing: every request answers 2xx. The regional API's drain
/// (readiness down, <c>Geo-Draining</c> on its answers) moves the edge to the other eu region before it stops listening; the
/// edge resends what never reached a destination; a restarted edge's clients move to the other edge (the pool plays the
/// load balancer). A process that crashes while stopping fails the test (<see cref="ServiceProcess.TerminateAsync"/>).
/// </summary>
[Collection(GeoSystemCollection.Name)]
public sealed class PlannedRestartTests(GeoSystem system) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => await system.RestoreAsync();

    public async ValueTask DisposeAsync() => await system.RestoreAsync();

    [Theory]
    [InlineData("RegionService")]
    [InlineData("ShardDirectory")]
    [InlineData("Replicator")]
    [InlineData("EdgeRouter")]
    public async Task A_planned_restart_under_a_writer_through_the_edges_fails_no_request(string kind)
    {
        var (client, pool) = system.CreateEdgePoolClient();
        using var _ = client;
        var (user, home) = await Http.CreateUserAsync(client, "eu");
        Assert.Equal("eu-west", home);
        using (var first = await client.PutAsync(new Uri($"/v1/users/{user}/docs/restart/seed", UriKind.Relative), Http.Json("{\"v\":0}"), Ct))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        // eu-central must know the user before it can take the writes while eu-west's API restarts.
        Assert.True(await Http.UntilAsync(async () => await system.Topology.SumOverShardsAsync("eu-central", "SELECT count(*) FROM documents WHERE user_id = @u", user) == 1, TimeSpan.FromSeconds(30)),
            "eu-central did not receive the user's first write within 30 s");

        var target = kind == "EdgeRouter" ? system.Edges[0] : system.Service(kind, home);
        var errors = new List<string>();
        var ok = 0;
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 2).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 5000 && !stop.IsCancellationRequested; i++)
            {
                var result = await OneRoundAsync(client, user, w, i);
                lock (errors)
                {
                    if (result is null)
                    {
                        ok++;
                    }
                    else
                    {
                        errors.Add(result);
                    }
                }

                await Task.Delay(20, CancellationToken.None);
            }
        }, CancellationToken.None)).ToList();

        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(1), Ct);
        var before = ok;
        await target.TerminateAsync(TimeSpan.FromSeconds(60));
        var stoppedAfter = clock.Elapsed;
        await target.StartAsync(system.Topology.ReadyTimeout, Ct);
        if (kind == "RegionService")
        {
            await EdgeProbes.WaitUntilRoutedHomeAsync(system.Edge, ["eu-west"], TimeSpan.FromSeconds(30));
        }

        await Task.Delay(TimeSpan.FromSeconds(2), Ct);
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        Assert.True(errors.Count == 0, $"{errors.Count} of {errors.Count + ok} requests failed around the restart of {kind} (stopped {stoppedAfter.TotalSeconds:0.0} s in):\n" + string.Join('\n', errors.Take(10)));
        Assert.True(ok - before >= 10, $"only {ok - before} requests ran during and after the restart of {kind}");
        Assert.Empty(target.CrashLogs);
        TestContext.Current.SendDiagnosticMessage($"{kind}: {ok} requests, all 2xx; {pool.Resent} resent to the other edge; stop took {stoppedAfter.TotalSeconds:0.0} s");
    }

    /// <summary>A write (PUT with an Idempotency-Key) and a read back; null when both answered 2xx, else what went wrong.</summary>
    private static async Task<string?> OneRoundAsync(HttpClient client, string user, int writer, int i)
    {
        try
        {
            var key = $"w{writer}-{i}";
            using var put = new HttpRequestMessage(HttpMethod.Put, new Uri($"/v1/users/{user}/docs/restart/{key}", UriKind.Relative))
            {
                Content = Http.Json("{\"i\":" + i.ToString(CultureInfo.InvariantCulture) + "}"),
            };
            put.Headers.Add("Idempotency-Key", $"restart-{user}-{key}");
            using var written = await client.SendAsync(put, CancellationToken.None);
            if (!written.IsSuccessStatusCode)
            {
                return $"PUT {key}: {(int)written.StatusCode} {Http.Header(written, "Geo-Region")} {await written.Content.ReadAsStringAsync(CancellationToken.None)}";
            }

            using var read = await client.GetAsync(new Uri($"/v1/users/{user}/docs/restart/seed", UriKind.Relative), CancellationToken.None);
            return read.IsSuccessStatusCode ? null : $"GET seed: {(int)read.StatusCode} {Http.Header(read, "Geo-Region")} {await read.Content.ReadAsStringAsync(CancellationToken.None)}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return $"round {writer}/{i}: {ex.GetType().Name}: {ex.Message}";
        }
    }
}
