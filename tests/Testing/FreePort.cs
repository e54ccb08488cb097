using System.Net;
using System.Net.Sockets;

namespace Geo.Testing;

/// <summary>Finds TCP ports on loopback that nothing listens on right now.</summary>
public static class FreePort
{
    // Below Linux's ephemeral range (32768-60999): a port the OS hands out for port 0 is also a source port it may give
    // an outgoing connection (to Postgres, a peer) before the service under test binds it ("address already in use").
    // Above the fixed ports of ./geo up (8080-8113) and the usual 1xxxx dev ports.
    private const int First = 20000;
    private const int Last = 32000;

    private static readonly HashSet<int> HandedOut = [];

    /// <summary>A loopback port outside the ephemeral range, free at the moment of the call, never the same twice per process.</summary>
    public static int Next()
    {
        lock (HandedOut)
        {
            for (var attempt = 0; attempt < 1000; attempt++)
            {
                var port = Random.Shared.Next(First, Last);
                if (HandedOut.Contains(port) || !IsFree(port))
                {
                    continue;
                }

                HandedOut.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException($"no free loopback port in {First}-{Last} after 1000 tries");
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
