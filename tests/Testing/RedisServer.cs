using System.Diagnostics;
using System.Globalization;
using Geo.Dev;
using Testcontainers.Redis;
using Xunit;

namespace Geo.Testing;

/// <summary>
/// A Redis server for tests, chosen like <see cref="PostgresServer"/>: <c>GEO_TEST_REDIS</c>, else Testcontainers
/// when Docker answers, else <c>redis-server</c> on a free loopback port. <see cref="StopAsync"/> and
/// <see cref="StartAsync"/> take it down and bring it back on the same port (not in <c>external</c> mode).
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    /// <summary>Environment variable holding a StackExchange.Redis connection string to an existing server.</summary>
    public const string EnvironmentVariable = "GEO_TEST_REDIS";

    private readonly Lock _gate = new();
    private RedisContainer? _container;
    private Process? _server;
    private Process? _watchdog;
    private string? _redisServer;
    private int _port;

    /// <summary><c>external</c>, <c>testcontainers</c> or <c>local-binaries</c>.</summary>
    public string Mode { get; private set; } = "not-started";

    /// <summary>StackExchange.Redis connection string, e.g. <c>127.0.0.1:41234</c>.</summary>
    public string ConnectionString { get; private set; } = string.Empty;

    /// <summary>True between a successful start and a stop.</summary>
    public bool IsRunning { get; private set; }

    public async ValueTask InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            Mode = "external";
            ConnectionString = external;
            IsRunning = true;
        }
        else
        {
            _port = FreePort.Next();
            ConnectionString = string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{_port},abortConnect=false,connectTimeout=2000");
            if (DockerProbe.EngineAnswers())
            {
                Mode = "testcontainers";
                _container = new RedisBuilder("redis:7-alpine").WithPortBinding(_port, 6379).Build();
            }
            else
            {
                Mode = "local-binaries";
                _redisServer = ChildProcesses.Find("redis-server")
                    ?? throw new InvalidOperationException("redis-server is not installed. Install it with `apt-get install -y redis-server` (`./geo test` does this when run as root), or set GEO_TEST_REDIS.");
                AppDomain.CurrentDomain.ProcessExit += (_, _) => Kill();
            }

            await StartAsync();
        }

        await Console.Error.WriteLineAsync($"[geo-testing] RedisServer mode: {Mode}");
    }

    /// <summary>Starts the server on its port and waits until it accepts connections.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        RequireOwned();
        if (IsRunning)
        {
            return;
        }

        if (_container is not null)
        {
            await _container.StartAsync(ct);
        }
        else
        {
            var port = _port.ToString(CultureInfo.InvariantCulture);
            var info = new ProcessStartInfo(_redisServer!, ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"])
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            var server = Process.Start(info) ?? throw new InvalidOperationException("could not start redis-server");
            server.OutputDataReceived += (_, _) => { };
            server.ErrorDataReceived += (_, _) => { };
            server.BeginOutputReadLine();
            server.BeginErrorReadLine();
            lock (_gate)
            {
                _server = server;
                _watchdog = ChildProcesses.Watch(server.Id, "KILL", directory: null);
            }
        }

        await WaitUntilAcceptingAsync(ct);
        IsRunning = true;
    }

    /// <summary>Stops the server; its port stays reserved for <see cref="StartAsync"/>.</summary>
    public async Task StopAsync(CancellationToken ct = default)
    {
        RequireOwned();
        IsRunning = false;
        if (_container is not null)
        {
            await _container.StopAsync(ct);
            return;
        }

        Kill();
    }

    /// <summary>SIGSTOP of a local <c>redis-server</c> (a hung server whose sockets stay open); <see cref="ResumeAsync"/> undoes it.</summary>
    public Task SuspendAsync() => SignalAsync("STOP");

    /// <summary>SIGCONT of the server <see cref="SuspendAsync"/> stopped.</summary>
    public Task ResumeAsync() => SignalAsync("CONT");

    private async Task SignalAsync(string signal)
    {
        var pid = _server?.Id ?? throw new InvalidOperationException($"Only a local redis-server can be suspended (mode {Mode}).");
        await ChildProcesses.RunAsync("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync()
    {
        if (_container is not null)
        {
            await _container.DisposeAsync();
        }

        Kill();
    }

    private void Kill()
    {
        Process? server, watchdog;
        lock (_gate)
        {
            (server, watchdog, _server, _watchdog) = (_server, _watchdog, null, null);
        }

        if (server is not null)
        {
            try
            {
                server.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }

            server.WaitForExit(TimeSpan.FromSeconds(10));
            server.Dispose();
        }

        watchdog?.WaitForExit(TimeSpan.FromSeconds(5));
        watchdog?.Dispose();
    }

    private async Task WaitUntilAcceptingAsync(CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (await RedisWire.PingAsync(_port, ct))
            {
                return;
            }

            if (_server is { HasExited: true })
            {
                throw new InvalidOperationException($"redis-server exited with {_server.ExitCode} before accepting connections on port {_port}.");
            }

            ct.ThrowIfCancellationRequested();
            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException($"Redis did not accept connections on port {_port} within 20 s.");
            }

            await Task.Delay(50, ct);
        }
    }

    private void RequireOwned()
    {
        if (Mode == "external")
        {
            throw new InvalidOperationException($"Redis from {EnvironmentVariable} cannot be stopped or started by tests.");
        }
    }
}
