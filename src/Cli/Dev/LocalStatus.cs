using System.Globalization;
using System.Net;
using Geo.Cli.Checkpoints;
using Geo.Dev;

namespace Geo.Cli.Dev;

/// <summary>
/// <c>./geo status</c>: every process's state (ready by its readiness probe, starting while its process lives, else
/// down), then the replication lag between regions read from each replicator's /metrics (mutual TLS, as the admin):
/// seconds since the peer was last known to hold every change of the region (grows during a partition), and changes
/// it has not acknowledged.
/// </summary>
internal static class LocalStatus
{
    public static async Task WriteAsync(LocalPaths paths, LocalServices services, TextWriter output)
    {
        await output.WriteLineAsync(Row("SERVICE", "REGION", "ENDPOINT", "STATE"));
        var ready = await Task.WhenAll(services.All.Select(s => services.ReadyAsync(s)));
        for (var i = 0; i < services.All.Count; i++)
        {
            var service = services.All[i];
            var state = ready[i] ? "ready" : services.Alive(service.Name) ? "starting" : "down";
            await output.WriteLineAsync(Row(service.Service.Project, service.Region, service.Endpoint, state));
        }

        await output.WriteLineAsync(Row("postgres", "-", $"127.0.0.1:{LocalPaths.PostgresPort}", await LocalDatabases.PostgresReadyAsync() ? "ready" : "down"));
        await output.WriteLineAsync(Row("redis", "-", $"127.0.0.1:{LocalPaths.RedisPort}", await LocalDatabases.RedisReadyAsync() ? "ready" : "down"));
        await ReplicationAsync(paths, services, output);
    }

    private static string Row(string service, string region, string endpoint, string state)
        => string.Create(CultureInfo.InvariantCulture, $"{service,-16} {region,-12} {endpoint,-26} {state}");

    private static async Task ReplicationAsync(LocalPaths paths, LocalServices services, TextWriter output)
    {
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"\n{"FROM",-12} {"TO",-12} {"LAG_S",10} {"PENDING",10}"));
        using var http = paths.AdminClient(TimeSpan.FromSeconds(2));
        foreach (var replicator in services.All.Where(s => s.Service == GeoService.Replicator))
        {
            var lag = new SortedDictionary<string, double>(StringComparer.Ordinal);
            var pending = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var sample in PromText.Parse(await MetricsAsync(http, replicator.Url)))
            {
                if (sample.Label("peer") is not { } peer)
                {
                    continue;
                }

                if (sample.Name == "geo_replicator_lag_seconds")
                {
                    lag[peer] = sample.Value;
                }
                else if (sample.Name == "geo_replicator_pending")
                {
                    pending[peer] = sample.Value;
                }
            }

            if (lag.Count == 0)
            {
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{replicator.Region,-12} {"-",-12} {"down",10} {"-",10}"));
            }

            foreach (var (peer, seconds) in lag)
            {
                var count = (long)pending.GetValueOrDefault(peer);
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{replicator.Region,-12} {peer,-12} {seconds,10:F1} {count,10}"));
            }
        }
    }

    private static async Task<string> MetricsAsync(HttpClient http, Uri replicator)
    {
        try
        {
            using var request = Readiness.Get(replicator, "/metrics", http2: true);
            using var response = await http.SendAsync(request);
            return response.StatusCode == HttpStatusCode.OK ? await response.Content.ReadAsStringAsync() : string.Empty;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return string.Empty;
        }
    }
}
