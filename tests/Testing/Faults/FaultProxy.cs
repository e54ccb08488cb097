using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Geo.Testing.Faults;

/// <summary>What a <see cref="FaultProxy"/> does with traffic.</summary>
public enum FaultMode
{
    /// <summary>Forward both ways (after <see cref="FaultProxy.Latency"/>).</summary>
    Pass,

    /// <summary>Refuse: new connections are reset at once, open ones are closed.</summary>
    Cut,

    /// <summary>Accept and keep connections open, but drop every byte both ways (a silent partition).</summary>
    Blackhole,

    /// <summary>Drop bytes from the client to the target; the other direction passes.</summary>
    DropClientToTarget,

    /// <summary>Drop bytes from the target to the client; the other direction passes.</summary>
    DropTargetToClient,

    /// <summary>Keep connections open and hold every byte both ways, in order, until the mode changes (a stalled peer).</summary>
    Hold,
}

/// <summary>
/// A TCP proxy on 127.0.0.1 that injects network faults between a client and a target port: latency, cut (refuse and
/// close), blackhole, one-way drop, hold, and reset of open connections. Put it between two services by giving the client
/// <see cref="Address"/> instead of the target's. Traffic only ever goes to 127.0.0.1.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<int, (TcpClient Client, TcpClient Target)> _connections = new();
    private readonly Task _acceptLoop;
    private int _nextId;
    private volatile FaultMode _mode = FaultMode.Pass;
    private long _latencyTicks;
    private long _accepted;

    private FaultProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptAsync(_stop.Token);
    }

    /// <summary>The proxy's port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary><c>https://127.0.0.1:{Port}</c> (the services behind it speak TLS).</summary>
    public Uri Address => new($"https://127.0.0.1:{Port}"); // TLS passes through the TCP proxy untouched

    /// <summary>Connections accepted so far (refused ones included).</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections open right now.</summary>
    public int OpenConnections => _connections.Count;

    public FaultMode Mode
    {
        get => _mode;
        set
        {
            _mode = value;
            if (value == FaultMode.Cut)
            {
                CloseAll(reset: false);
            }
        }
    }

    /// <summary>Delay added before every forwarded chunk, both ways.</summary>
    public TimeSpan Latency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));
        set => Interlocked.Exchange(ref _latencyTicks, value.Ticks);
    }

    /// <summary>Starts a proxy to <c>127.0.0.1:{targetPort}</c>.</summary>
    public static FaultProxy Start(int targetPort) => new(targetPort);

    /// <summary>Refuses and closes connections until <see cref="Heal"/>.</summary>
    public void Cut() => Mode = FaultMode.Cut;

    /// <summary>Forwards again (latency stays as set).</summary>
    public void Heal() => Mode = FaultMode.Pass;

    /// <summary>Resets (TCP RST) every open connection; new ones are accepted as the mode says.</summary>
    public void ResetConnections() => CloseAll(reset: true);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        CloseAll(reset: false);
        await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }

    private async Task AcceptAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(ct);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }

            Interlocked.Increment(ref _accepted);
            if (_mode == FaultMode.Cut)
            {
                Reset(client);
                continue;
            }

            _ = HandleAsync(client, ct);
        }
    }

    private async Task HandleAsync(TcpClient client, CancellationToken ct)
    {
        var target = new TcpClient();
        var id = Interlocked.Increment(ref _nextId);
        try
        {
            client.NoDelay = true;
            target.NoDelay = true;
            await target.ConnectAsync(IPAddress.Loopback, _targetPort, ct);
            _connections[id] = (client, target);
            using var both = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var up = PumpAsync(client.GetStream(), target.GetStream(), toTarget: true, both.Token);
            var down = PumpAsync(target.GetStream(), client.GetStream(), toTarget: false, both.Token);
            await Task.WhenAny(up, down);
            await both.CancelAsync();
            await Task.WhenAll(up, down).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The connection ended: by either side, a fault, or disposal.
        }
        finally
        {
            _connections.TryRemove(id, out _);
            client.Dispose();
            target.Dispose();
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool toTarget, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer, ct);
            if (read == 0)
            {
                return;
            }

            while (_mode == FaultMode.Hold)
            {
                await Task.Delay(5, ct);
            }

            var mode = _mode;
            if (mode == FaultMode.Cut)
            {
                return;
            }

            if (mode == FaultMode.Blackhole || (toTarget && mode == FaultMode.DropClientToTarget) || (!toTarget && mode == FaultMode.DropTargetToClient))
            {
                continue;
            }

            if (Latency > TimeSpan.Zero)
            {
                await Task.Delay(Latency, ct);
            }

            await to.WriteAsync(buffer.AsMemory(0, read), ct);
        }
    }

    private void CloseAll(bool reset)
    {
        foreach (var (id, pair) in _connections)
        {
            if (_connections.TryRemove(id, out _))
            {
                if (reset)
                {
                    Reset(pair.Client);
                    Reset(pair.Target);
                }
                else
                {
                    pair.Client.Dispose();
                    pair.Target.Dispose();
                }
            }
        }
    }

    private static void Reset(TcpClient client)
    {
        try
        {
            if (client.Client is { } socket) // null once the connection's own handler disposed it
            {
                socket.LingerState = new LingerOption(true, 0); // Close with RST instead of FIN.
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }

        client.Dispose();
    }
}
