using System.Net;

namespace Geo.Dev;

/// <summary>The readiness probe of a Geo service: <c>GET /healthz/ready</c> answers 200 (HTTP/2 for the gRPC services).</summary>
public static class Readiness
{
    /// <summary>A GET of <paramref name="path"/>; <paramref name="http2"/> for the gRPC services (HTTP/2 only).</summary>
    public static HttpRequestMessage Get(Uri service, string path, bool http2) => http2
        ? new HttpRequestMessage(HttpMethod.Get, new Uri(service, path)) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact }
        : new HttpRequestMessage(HttpMethod.Get, new Uri(service, path));

    /// <summary>True when <paramref name="service"/>'s <c>/healthz/ready</c> answers a success; false when it answers otherwise, refuses or times out.</summary>
    public static async Task<bool> IsReadyAsync(HttpClient http, Uri service, bool http2, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(http);
        try
        {
            using var request = Get(service, "/healthz/ready", http2);
            using var response = await http.SendAsync(request, ct);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }
}
