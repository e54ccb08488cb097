using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Geo.Testing.Services;

/// <summary>Observations of a running edge and regional APIs that several test projects wait on.</summary>
public static class EdgeProbes
{
    /// <summary>
    /// Until an edge's health checks notice restarted APIs it still fails over; a create pinned to each region that is
    /// served there without failover shows the edge routes to every region again. Throws after <paramref name="limit"/>.
    /// </summary>
    public static async Task WaitUntilRoutedHomeAsync(HttpClient edge, IEnumerable<string> regions, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        var pending = new HashSet<string>(regions, StringComparer.Ordinal);
        while (pending.Count > 0 && clock.Elapsed < limit)
        {
            foreach (var region in pending.ToList())
            {
                var residency = region[..region.IndexOf('-', StringComparison.Ordinal)]; // local regions are named {jurisdiction}-{place}
                using var body = new StringContent($"{{\"residency\":\"{residency}\",\"homeRegion\":\"{region}\"}}", Encoding.UTF8, "application/json");
                using var response = await edge.PostAsync(new Uri("/v1/users", UriKind.Relative), body);
                if (response.IsSuccessStatusCode && Header(response, "Geo-Region") == region && Header(response, "Geo-Failover") is null)
                {
                    pending.Remove(region);
                }
            }

            if (pending.Count > 0)
            {
                await Task.Delay(200);
            }
        }

        if (pending.Count > 0)
        {
            throw new TimeoutException($"the edge still does not route to {string.Join(", ", pending)} {limit.TotalSeconds:0} s after a restart");
        }
    }

    /// <summary>Requests a regional API has answered on its <c>/v1</c> routes, from its own Prometheus metrics.</summary>
    public static async Task<long> ApiRequestCountAsync(Uri api)
    {
        using var http = TestCredentials.CreateClient(api, TimeSpan.FromSeconds(10));
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        return text.Split('\n')
            .Where(l => l.StartsWith("http_server_request_duration_seconds_count{", StringComparison.Ordinal) && l.Contains("http_route=\"/v1", StringComparison.Ordinal))
            .Sum(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }

    /// <summary>Sum of a counter on a service's <c>/metrics</c> over the series whose line contains <paramref name="label"/>.</summary>
    public static async Task<long> CounterAsync(HttpClient service, string name, string label)
    {
        var text = await service.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        return text.Split('\n')
            .Where(l => l.StartsWith(name, StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal))
            .Sum(l => (long)double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }

    private static string? Header(HttpResponseMessage response, string name)
        => response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}
