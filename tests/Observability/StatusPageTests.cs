using System.Diagnostics;
using System.Text;
using Geo.Testing;
using Geo.Testing.Services;

namespace Geo.Observability;

/// <summary>
/// The status page (<c>geoctl status-page</c>) against the running regions, loaded in a real browser: headless Chromium
/// renders it and the test reads what it shows from the browser's DOM.
/// </summary>
[Collection(ObservedSystemCollection.Name)]
public sealed class StatusPageTests(ObservedSystem system)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_status_page_shows_regions_replication_shard_maps_conflicts_and_checkpoints_in_a_browser()
    {
        var chromium = new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" }.FirstOrDefault(File.Exists);
        Assert.True(chromium is not null, "headless Chromium is needed: apt-get install -y chromium");

        // Traffic for the checkpoints to measure while the page reads: a bounded writer (at most 600 PUTs, 5 a second).
        string user;
        using (var create = await system.Edge.PostAsync(new Uri("/v1/users", UriKind.Relative),
            new StringContent("{\"residency\":\"eu\",\"homeRegion\":\"eu-west\"}", Encoding.UTF8, "application/json"), Ct))
        {
            create.EnsureSuccessStatusCode();
            using var created = System.Text.Json.JsonDocument.Parse(await create.Content.ReadAsStringAsync(Ct));
            user = created.RootElement.GetProperty("userId").GetString()!;
        }

        using var stopTraffic = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var traffic = Task.Run(async () =>
        {
            for (var i = 0; i < 600 && !stopTraffic.IsCancellationRequested; i++)
            {
                using var put = await system.Edge.PutAsync(new Uri($"/v1/users/{user}/docs/notes/n{i % 10}", UriKind.Relative),
                    new StringContent("{\"i\":" + i + "}", Encoding.UTF8, "application/json"), CancellationToken.None);
                await Task.Delay(200, CancellationToken.None);
            }
        }, CancellationToken.None);

        var port = FreePort.Next();
        var page = new Uri($"http://127.0.0.1:{port}/");
        using var geoctl = Geoctl.Start(["status-page", "--topology", system.Topology.Path, "--listen", page.ToString(), "--refresh", "2"]);
        try
        {
            // Until the page holds a second reading (the checkpoints compare two); bounded.
            using var http = ServiceClients.For(page, TimeSpan.FromSeconds(5));
            var clock = Stopwatch.StartNew();
            var served = "";
            while (clock.Elapsed < TimeSpan.FromSeconds(60) && !System.Text.RegularExpressions.Regex.IsMatch(served, "<td>eu-west</td><td>api</td><td>p95 s</td><td>[0-9.]+</td>"))
            {
                await Task.Delay(500, Ct);
                try
                {
                    served = await http.GetStringAsync(page, Ct);
                }
                catch (HttpRequestException)
                {
                }
            }

            Assert.Contains("<table id=\"checkpoints\"", served, StringComparison.Ordinal);

            var dom = await DumpDomAsync(chromium!, page);
            Assert.Contains("<title>Geo status</title>", dom, StringComparison.Ordinal);
            // Columns: edge, api, directory, replicator. eu-west runs all four; eu-central runs no edge, and says so.
            Assert.Equal("<td class=\"ok\">ready</td><td class=\"ok\">ready</td><td class=\"ok\">ready</td><td class=\"ok\">ready</td>",
                Cells(Row(dom, "<tr data-region=\"eu-west\">")));
            Assert.Equal("<td class=\"bad\">down</td><td class=\"ok\">ready</td><td class=\"ok\">ready</td><td class=\"ok\">ready</td>",
                Cells(Row(dom, "<tr data-region=\"eu-central\">")));
            Assert.Matches("<tr><th>region</th><th>jurisdiction</th><th>edge</th><th>api</th><th>directory</th><th>replicator</th></tr>", dom);

            // The lag matrix has a cell each way between the two regions, with seconds and pending changes.
            Assert.Contains("data-from=\"eu-west\" data-to=\"eu-central\">", dom, StringComparison.Ordinal);
            Assert.Contains("data-from=\"eu-central\" data-to=\"eu-west\">", dom, StringComparison.Ordinal);
            Assert.Matches("data-from=\"eu-west\" data-to=\"eu-central\">[0-9.]+ s / [0-9]+</td>", dom);
            // Shard maps: both shards of each region own buckets, 4096 in all.
            Assert.Matches(@"eu-west-0: \d+, eu-west-1: \d+", dom);
            var buckets = System.Text.RegularExpressions.Regex.Matches(Row(dom, "<tr><td>eu-central</td>"), @"eu-central-\d: (\d+)").Sum(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(4096, buckets);
            Assert.Contains("Recent conflicts", dom, StringComparison.Ordinal);
            // Checkpoints with current values, per tier and shard.
            Assert.Matches("<td>eu-west</td><td>api</td><td>p95 s</td><td>[0-9.]+</td><td>≤ 0.2</td>", dom);
            Assert.Matches("<td>eu-west</td><td>eu-west-0</td><td>writes/s</td><td>[0-9.]+</td>", dom);
            Assert.Contains("<table id=\"steps\">", dom, StringComparison.Ordinal);

            // A screenshot for people (kept outside the repository): GEO_STATUS_SCREENSHOT=/tmp/status.png.
            if (Environment.GetEnvironmentVariable("GEO_STATUS_SCREENSHOT") is { Length: > 0 } screenshot)
            {
                await RunChromiumAsync(chromium!, $"--screenshot={screenshot}", "--window-size=1280,1400", page.ToString());
            }
        }
        finally
        {
            await stopTraffic.CancelAsync();
            await traffic;
            geoctl.Kill(entireProcessTree: true);
            await geoctl.WaitForExitAsync(CancellationToken.None);
        }
    }

    private static string Row(string dom, string start)
    {
        var i = dom.IndexOf(start, StringComparison.Ordinal);
        Assert.True(i >= 0, $"no row {start} in the page");
        return dom[i..dom.IndexOf("</tr>", i, StringComparison.Ordinal)];
    }

    // The health cells of a region row (after the region and jurisdiction cells).
    private static string Cells(string row) => string.Concat(System.Text.RegularExpressions.Regex.Matches(row, "<td class=\"(?:ok|bad|muted)\">[^<]*</td>").Select(m => m.Value));

    private static Task<string> DumpDomAsync(string chromium, Uri page) => RunChromiumAsync(chromium, "--dump-dom", page.ToString());

    private static async Task<string> RunChromiumAsync(string chromium, params string[] args)
    {
        var profile = Directory.CreateTempSubdirectory("geo-chromium-");
        try
        {
            var info = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", $"--user-data-dir={profile.FullName}", .. args])
            {
                info.ArgumentList.Add(a);
            }

            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEndAsync(Ct);
            var errors = process.StandardError.ReadToEndAsync(Ct);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(90));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            Assert.True(process.ExitCode == 0, $"chromium exited with {process.ExitCode}: {await errors}");
            return await output;
        }
        finally
        {
            profile.Delete(recursive: true);
        }
    }
}
