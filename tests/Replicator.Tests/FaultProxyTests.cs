using System.Net;
using System.Net.Sockets;
using Geo.Testing.Faults;

namespace Geo.Replicator.Tests;

public sealed class FaultProxyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Forwards_delays_cuts_blackholes_and_heals()
    {
        using var echo = new TcpListener(IPAddress.Loopback, 0);
        echo.Start();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                var client = await echo.AcceptTcpClientAsync(Ct);
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        var buffer = new byte[1024];
                        int n;
                        while ((n = await client.GetStream().ReadAsync(buffer, Ct)) > 0)
                        {
                            await client.GetStream().WriteAsync(buffer.AsMemory(0, n), Ct);
                        }
                    }
                }, Ct);
            }
        }, Ct);

        await using var proxy = FaultProxy.Start(((IPEndPoint)echo.LocalEndpoint).Port);
        Assert.Equal("ping", await RoundTripAsync(proxy.Port, "ping", TimeSpan.FromSeconds(5)));

        proxy.Latency = TimeSpan.FromMilliseconds(200);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal("slow", await RoundTripAsync(proxy.Port, "slow", TimeSpan.FromSeconds(5)));
        Assert.True(watch.ElapsedMilliseconds >= 350, $"round trip took {watch.ElapsedMilliseconds} ms with 2 x 200 ms latency");
        proxy.Latency = TimeSpan.Zero;

        proxy.Mode = FaultMode.Blackhole;
        Assert.Null(await RoundTripAsync(proxy.Port, "lost", TimeSpan.FromMilliseconds(500)));

        proxy.Cut();
        Assert.Null(await RoundTripAsync(proxy.Port, "cut", TimeSpan.FromMilliseconds(500)));

        proxy.Heal();
        Assert.Equal("back", await RoundTripAsync(proxy.Port, "back", TimeSpan.FromSeconds(5)));
    }

    private static async Task<string?> RoundTripAsync(int port, string text, TimeSpan timeout)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(timeout);
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, limit.Token);
            var bytes = System.Text.Encoding.ASCII.GetBytes(text);
            await client.GetStream().WriteAsync(bytes, limit.Token);
            var buffer = new byte[bytes.Length];
            var read = 0;
            while (read < buffer.Length)
            {
                var n = await client.GetStream().ReadAsync(buffer.AsMemory(read), limit.Token);
                if (n == 0)
                {
                    return null;
                }

                read += n;
            }

            return System.Text.Encoding.ASCII.GetString(buffer);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException)
        {
            return null;
        }
    }
}
