namespace Geo.Testing.Services;

/// <summary>
/// HTTP clients for the services a test started: the one place that decides how a test reaches a service (addresses,
/// and the credentials the services ask for), so tests never build their own.
/// </summary>
public static class ServiceClients
{
    /// <summary>A client for <paramref name="baseAddress"/> (HTTP/1.1), e.g. an edge, an API or a metrics endpoint.</summary>
    public static HttpClient For(Uri baseAddress, TimeSpan? timeout = null)
        => TestCredentials.CreateClient(baseAddress, timeout ?? TimeSpan.FromSeconds(30));
}
