using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Geo.Testing;

/// <summary>Answers "is a Docker engine reachable?" quickly, without the docker CLI and without hanging.</summary>
internal static class DockerProbe
{
    private static readonly TimeSpan Budget = TimeSpan.FromMilliseconds(1500);

    public static bool EngineAnswers()
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        EndPoint? endpoint = host switch
        {
            null or "" => File.Exists("/var/run/docker.sock") ? new UnixDomainSocketEndPoint("/var/run/docker.sock") : null,
            _ when host.StartsWith("unix://", StringComparison.Ordinal) => new UnixDomainSocketEndPoint(host["unix://".Length..]),
            _ when host.StartsWith("tcp://", StringComparison.Ordinal) && Uri.TryCreate(host, UriKind.Absolute, out var uri) => new DnsEndPoint(uri.Host, uri.Port),
            _ => null,
        };
        return endpoint is not null && Ping(endpoint);
    }

    private static bool Ping(EndPoint endpoint)
    {
        try
        {
            using var cts = new CancellationTokenSource(Budget);
            using var socket = endpoint is UnixDomainSocketEndPoint
                ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
                : new Socket(SocketType.Stream, ProtocolType.Tcp);
            socket.ConnectAsync(endpoint, cts.Token).AsTask().GetAwaiter().GetResult();
            socket.SendAsync("GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"u8.ToArray(), SocketFlags.None, cts.Token).AsTask().GetAwaiter().GetResult();
            var buffer = new byte[256];
            var read = socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token).AsTask().GetAwaiter().GetResult();
            return Encoding.ASCII.GetString(buffer, 0, read).Contains(" 200 ", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            return false;
        }
    }
}
