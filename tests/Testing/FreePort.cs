using System.Net;
using System.Net.Sockets;

namespace Geo.Testing;

/// <summary>Finds TCP ports on loopback that nothing listens on right now.</summary>
public static class FreePort
{
    /// <summary>A port the OS just handed out for 127.0.0.1; free at the moment of the call.</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
