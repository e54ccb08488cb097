using System.Collections.Concurrent;
using System.Diagnostics;
using Geo.Dev;
using Geo.Testing.Security;

namespace Geo.Testing.Services;

/// <summary>
/// One Geo service (EdgeRouter, RegionService, ShardDirectory, Replicator) as a real child process on a loopback port,
/// started from its build output with settings as command-line configuration. Captures its JSON log lines so a test
/// can fail on unexpected errors, and can be killed (<see cref="StopAsync"/>) or stopped gracefully with SIGTERM
/// (<see cref="TerminateAsync"/>) and started again on the same port. A process that ever writes "Unhandled exception"
/// (the runtime's crash report) fails the test: the line counts as an error log, and <see cref="DisposeAllAsync"/> throws.
/// </summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    private readonly string _project;
    private readonly IReadOnlyDictionary<string, string> _settings;
    private readonly bool _http2Only;
    private readonly ConcurrentQueue<string> _logs = new();
    private Process? _process;

    /// <summary>The role each service project runs as (its certificate's role).</summary>
    public static readonly IReadOnlyDictionary<string, string> RoleOf = GeoService.All.ToDictionary(s => s.Project, s => s.Role, StringComparer.Ordinal);

    private ServiceProcess(string project, int port, IReadOnlyDictionary<string, string> settings, bool http2Only)
    {
        _project = project;
        Port = port;
        _settings = WithTls(project, WithTestIssuer(settings));
        _http2Only = http2Only;
    }

    /// <summary>The loopback port the service listens on.</summary>
    public int Port { get; }

    /// <summary><c>https://127.0.0.1:{Port}</c> (every Geo service serves TLS only).</summary>
    public Uri BaseAddress => new($"https://127.0.0.1:{Port}");

    /// <summary>Every line the process wrote to stdout or stderr, across restarts.</summary>
    public IReadOnlyCollection<string> Logs => _logs;

    /// <summary>
    /// Log lines at Error or Critical level (JSON console format), except Kestrel's reports of a connection that broke
    /// under it (an <see cref="IOException"/> writing to a socket the peer already closed, e.g. a GOAWAY to a client a
    /// test just stopped): those are the network's doing, not the service's, and tests stop peers on purpose.
    /// </summary>
    public IEnumerable<string> ErrorLogs => _logs.Where(l => (l.Contains("\"LogLevel\":\"Error\"", StringComparison.Ordinal) || l.Contains("\"LogLevel\":\"Critical\"", StringComparison.Ordinal)
        || IsCrashReport(l)) && !IsBrokenConnection(l));

    private static bool IsBrokenConnection(string line) =>
        line.Contains("\"Category\":\"Microsoft.AspNetCore.Server.Kestrel\"", StringComparison.Ordinal)
        && line.Contains("\"Exception\":\"System.IO.IOException:", StringComparison.Ordinal)
        && !line.Contains("\"LogLevel\":\"Critical\"", StringComparison.Ordinal);

    /// <summary>Lines of the runtime's crash report ("Unhandled exception. …"): the process died of an exception nobody caught.</summary>
    public IEnumerable<string> CrashLogs => _logs.Where(IsCrashReport);

    /// <summary>Exit code of the last run that ended; null while running or before the first stop.</summary>
    public int? LastExitCode { get; private set; }

    /// <summary>True while the process runs.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>The running process's id; null while it is not running.</summary>
    public int? ProcessId => _process is { HasExited: false } process ? process.Id : null;

    /// <summary>The project this process runs (<c>src/{Project}</c>).</summary>
    public string Project => _project;

    /// <summary>Starts <c>src/{project}</c>'s built assembly and waits until <c>/healthz/ready</c> answers 200.</summary>
    public static async Task<ServiceProcess> StartAsync(string project, int port, IReadOnlyDictionary<string, string> settings,
        bool http2Only = false, TimeSpan? readyTimeout = null, CancellationToken ct = default)
    {
        var service = new ServiceProcess(project, port, settings, http2Only);
        try
        {
            await service.StartAsync(readyTimeout ?? TimeSpan.FromSeconds(60), ct);
        }
        catch
        {
            await service.StopAsync(); // never leave a half-started process behind
            throw;
        }

        return service;
    }

    /// <summary>Starts the process again (after <see cref="StopAsync"/>) and waits until ready.</summary>
    public Task StartAsync(TimeSpan readyTimeout, CancellationToken ct = default)
    {
        if (IsRunning)
        {
            throw new InvalidOperationException($"{_project} is already running.");
        }

        var dll = AssemblyPath(_project);
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // A short shutdown delay unless the test sets one: fixtures stop dozens of processes (later arguments win).
        var settings = _settings.Prepend(new("Geo:Shutdown:Delay", "00:00:00.200"));
        foreach (var arg in ServiceLaunch.Arguments(dll, BaseAddress, settings))
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment[ServiceLaunch.UserHashKeyVariable] = TestCredentials.UserHashKey; // not on the command line
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Collect(e.Data);
        process.ErrorDataReceived += (_, e) => Collect(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        return WaitReadyAsync(readyTimeout, ct);
    }

    /// <summary>Kills the process (no graceful shutdown: like a crash or a lost machine).</summary>
    public async Task StopAsync()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync();
            LastExitCode = process.ExitCode;
            process.Dispose();
            _process = null;
        }
    }

    /// <summary>Suspends the process (SIGSTOP): a hung service whose sockets stay open. <see cref="ResumeAsync"/> undoes it.</summary>
    public Task SuspendAsync() => SignalAsync("STOP");

    /// <summary>Resumes a process suspended with <see cref="SuspendAsync"/> (SIGCONT).</summary>
    public Task ResumeAsync() => SignalAsync("CONT");

    /// <summary>
    /// Planned stop: SIGTERM, then waits for the process to drain and exit. Kills it and throws when it has not exited
    /// within <paramref name="timeout"/> (default 60 s), or when it crashed while stopping.
    /// </summary>
    public async Task TerminateAsync(TimeSpan? timeout = null)
    {
        if (_process is not { } process)
        {
            return;
        }

        var crashesBefore = CrashLogs.Count();
        if (!process.HasExited)
        {
            await SignalAsync("TERM");
        }

        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            await StopAsync();
            throw new TimeoutException($"{_project} did not exit within {timeout ?? TimeSpan.FromSeconds(60)} of SIGTERM:\n{string.Join('\n', _logs.TakeLast(20))}");
        }

        await StopAsync(); // reaps and records the exit code
        if (CrashLogs.Count() > crashesBefore)
        {
            throw new InvalidOperationException($"{_project} crashed while stopping:\n{string.Join('\n', _logs.TakeLast(20))}");
        }
    }

    /// <summary>Stops gracefully if running (SIGTERM; killed after 30 s). Never throws for a crash: see <see cref="DisposeAllAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await TerminateAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            // Reported by DisposeAllAsync through CrashLogs; a fixture's disposal must stop every other process too.
        }
        finally
        {
            await StopAsync();
        }
    }

    /// <summary>
    /// Stops every service gracefully at once, then throws when any of them ever logged a crash report — so a fixture's
    /// disposal fails the run when a process died of an unhandled exception, at shutdown included.
    /// </summary>
    public static async Task DisposeAllAsync(IEnumerable<ServiceProcess?> services)
    {
        var all = services.OfType<ServiceProcess>().Distinct().ToList();
        await Task.WhenAll(all.Select(s => s.DisposeAsync().AsTask()));
        var crashes = all.SelectMany(s => s.CrashLogs).ToList();
        if (crashes.Count > 0)
        {
            throw new InvalidOperationException("a service process crashed (\"Unhandled exception\"):\n" + string.Join('\n', crashes.Take(10)));
        }
    }

    private static bool IsCrashReport(string line) => line.Contains("Unhandled exception", StringComparison.Ordinal);

    /// <summary>Path of a service's built assembly, in the same configuration as the running tests.</summary>
    public static string AssemblyPath(string project)
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var path = GeoService.Of(project).AssemblyPath(RepositoryRoot(), configuration);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build {project} first (dotnet build -c {configuration}); not found: {path}");
    }

    /// <summary>The folder holding Geo.sln.</summary>
    public static string RepositoryRoot() => GeoService.RepositoryRoot(AppContext.BaseDirectory);

    // The service's certificate of the run's CA (its region and role) unless the test set Geo:Tls itself.
    private static Dictionary<string, string> WithTls(string project, IReadOnlyDictionary<string, string> settings)
    {
        var all = new Dictionary<string, string>(settings, StringComparer.Ordinal);
        if (!all.Keys.Any(k => k.StartsWith("Geo:Tls:", StringComparison.Ordinal)) && all.TryGetValue("Geo:Region", out var region) && RoleOf.TryGetValue(project, out var role))
        {
            foreach (var (key, value) in TestPki.ServiceSettings(region, role))
            {
                all[key] = value;
            }
        }

        return all;
    }

    private async Task SignalAsync(string signal)
    {
        var process = _process is { HasExited: false } p ? p : throw new InvalidOperationException($"{_project} is not running.");
        if (!await ChildProcesses.SignalAsync(process.Id, signal))
        {
            throw new InvalidOperationException($"kill -{signal} {process.Id} failed.");
        }
    }

    // Every service trusts the test run's development issuer unless the test configures Geo:Auth itself.
    private static Dictionary<string, string> WithTestIssuer(IReadOnlyDictionary<string, string> settings)
    {
        var merged = new Dictionary<string, string>(settings, StringComparer.Ordinal);
        if (!merged.Keys.Any(k => k.StartsWith(Geo.ServiceDefaults.Auth.GeoAuthOptions.SectionName + ":", StringComparison.OrdinalIgnoreCase)))
        {
            foreach (var (key, value) in TestCredentials.ServiceSettings)
            {
                merged[key] = value;
            }
        }

        return merged;
    }

    private void Collect(string? line)
    {
        if (line is not null)
        {
            _logs.Enqueue($"[{_project}:{Port}] {line}");
        }
    }

    private async Task WaitReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        // Health is anonymous, but the probe presents the harness certificate anyway: a service that refused it at the
        // TLS handshake (wrong CA) must not look ready.
        using var http = TestCredentials.CreateClient(timeout: TimeSpan.FromSeconds(2));
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            if (_process is null || _process.HasExited)
            {
                throw new InvalidOperationException($"{_project} exited during start-up:\n{string.Join('\n', _logs.TakeLast(40))}");
            }

            if (await Readiness.IsReadyAsync(http, BaseAddress, _http2Only, ct))
            {
                return;
            }

            await Task.Delay(100, ct);
        }

        throw new TimeoutException($"{_project} not ready within {timeout}:\n{string.Join('\n', _logs.TakeLast(40))}");
    }
}
