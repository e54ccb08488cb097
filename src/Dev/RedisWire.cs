using System.Net.Sockets;

namespace Geo.Dev;

/// <summary>The two Redis commands a local server's keeper needs (PING, SHUTDOWN NOSAVE), spoken over a bare socket.</summary>
public static class RedisWire
{
    /// <summary>True when a Redis on 127.0.0.1:<paramref name="port"/> answers PING; false when nothing listens there.</summary>
    public static async Task<bool> PingAsync(int port, CancellationToken ct = default)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, ct);
            await using var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), ct);
            var buffer = new byte[16];
            return await stream.ReadAsync(buffer, ct) > 0 && buffer[0] == (byte)'+';
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return false;
        }
    }

    /// <summary>Stops the Redis on 127.0.0.1:<paramref name="port"/> without saving; nothing when none answers.</summary>
    public static async Task ShutdownNoSaveAsync(int port, CancellationToken ct = default)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port, ct);
            await using var stream = client.GetStream();
            await stream.WriteAsync("SHUTDOWN NOSAVE\r\n"u8.ToArray(), ct);
            // The server closes the connection as it exits.
            _ = await stream.ReadAsync(new byte[16], ct);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
        }
    }
}
