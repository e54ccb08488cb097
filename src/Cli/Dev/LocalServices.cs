using Geo.Core.Topology;
using Geo.Dev;
using Geo.ServiceDefaults.Auth;

namespace Geo.Cli.Dev;

/// <summary>One service of one region: <c>{Project}-{region}</c> names its pid file and log.</summary>
internal sealed record LocalService(GeoService Service, string Region, Uri Url)
{
    public string Name => $"{Service.Project}-{Region}";

    /// <summary>The URL as the topology writes it (no trailing slash).</summary>
    public string Endpoint => Url.GetLeftPart(UriPartial.Authority);
}

/// <summary>
/// The sixteen service processes of the local system, started detached (a session of their own, output to
/// <c>.geo/logs/{name}.log</c>, pid in <c>.geo/run/{name}.pid</c>) so they outlive the runner: <c>./geo up</c> returns
/// to the shell, and a later <c>./geo down</c> stops them with SIGTERM and waits until they are gone. A service is alive
/// when its recorded process is neither gone nor a zombie (by /proc, never <c>kill -0</c>) and still runs that service's
/// assembly (pids get reused).
/// </summary>
internal sealed class LocalServices
{
    /// <summary>SIGKILL after this long: the default shutdown delay plus drain is 22 s.</summary>
    public static readonly TimeSpan StopLimit = TimeSpan.FromSeconds(40);

    private readonly LocalPaths _paths;

    public LocalServices(LocalPaths paths, GeoTopology topology, IReadOnlyList<string> regionOrder, TimeProvider? time = null)
    {
        _paths = paths;
        Time = time ?? TimeProvider.System;
        All = [.. GeoService.All.SelectMany(s => regionOrder.Select(r => new LocalService(s, r, s.Url(topology.Region(r)))))];
    }

    /// <summary>The clock of the readiness deadlines.</summary>
    public TimeProvider Time { get; }

    /// <summary>Every service of every region, services in start order, regions in the topology file's order.</summary>
    public IReadOnlyList<LocalService> All { get; }

    public LocalService Find(string project, string region) => All.Single(s => s.Service.Project == project && s.Region == region);

    /// <summary>
    /// The service's readiness probe, on a client of its own as each curl of ./geo was a process of its own: a connection
    /// opened while a service was still starting can stay stuck in a shared pool (an HTTP/2 one takes every later
    /// request), and a long-lived client then never saw the service become ready. 5 s, not a curl's 1 s: the first TLS
    /// handshakes of a cold process on a busy host take longer.
    /// </summary>
    public async Task<bool> ReadyAsync(LocalService service, CancellationToken ct = default)
    {
        using var probe = _paths.AdminClient(TimeSpan.FromSeconds(5));
        return await Readiness.IsReadyAsync(probe, service.Url, service.Service.Http2Only, ct);
    }

    /// <summary>The recorded pid of <paramref name="name"/>, or null.</summary>
    public int? Pid(string name) => DetachedProcess.ReadPid(_paths.PidFile(name));

    /// <summary>The process recorded for <paramref name="name"/> is alive and still that service.</summary>
    public bool Alive(string name)
        => Pid(name) is { } pid && ChildProcesses.IsAlive(pid)
            && ChildProcesses.CommandLine(pid) is { } line && line.Contains($"Geo.{name.Split('-')[0]}.dll", StringComparison.Ordinal);

    /// <summary>Starts <paramref name="service"/> detached unless it is alive.</summary>
    public async Task StartAsync(LocalService service)
    {
        if (Alive(service.Name))
        {
            return;
        }

        Directory.CreateDirectory(_paths.Run);
        Directory.CreateDirectory(_paths.Logs);
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["Geo:Region"] = service.Region,
            ["Geo:Topology"] = _paths.Topology,
        };
        foreach (var (key, value) in ServiceLaunch.TlsSettings(_paths.Pki, service.Region, service.Service.Role))
        {
            settings[key] = value;
        }

        foreach (var (key, value) in DevelopmentIssuer.ServiceSettings(Path.Combine(_paths.Secrets, DevelopmentIssuer.PublicKeyFileName)))
        {
            settings[key] = value;
        }

        // The log hash key travels in the environment, not on the command line that ps shows. Sixteen processes on a
        // small machine: workstation GC (server GC gives each process a heap and GC thread per core) and no tiered-PGO
        // instrumentation make start-up cheaper; neither changes behaviour.
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [ServiceLaunch.UserHashKeyVariable] = (await File.ReadAllTextAsync(_paths.UserHashKey)).Trim(),
            ["DOTNET_gcServer"] = "0",
            ["DOTNET_TieredPGO"] = "0",
        };
        await DetachedProcess.StartAsync("dotnet", ServiceLaunch.Arguments(service.Service.AssemblyPath(_paths.Root), service.Url, settings),
            _paths.PidFile(service.Name), _paths.Log(service.Name), environment);
    }

    /// <summary>SIGTERM (the service drains: readiness down, in-flight requests finish), waits until it is gone; SIGKILL after <paramref name="limit"/>.</summary>
    public async Task StopAsync(string name, TimeSpan? limit = null, TextWriter? say = null)
    {
        if (Pid(name) is not { } pid)
        {
            return;
        }

        if (Alive(name) && !await ChildProcesses.TerminateAsync(pid, limit ?? StopLimit) && say is not null)
        {
            await say.WriteLineAsync($"geo: {name} did not stop within {(limit ?? StopLimit).TotalSeconds:0} s; killed it");
        }

        File.Delete(_paths.PidFile(name));
    }

    /// <summary>Every service with a pid file (whatever started it), stopped at once.</summary>
    public Task StopAllAsync(TextWriter say)
        => Directory.Exists(_paths.Run)
            ? Task.WhenAll(Directory.EnumerateFiles(_paths.Run, "*.pid").Select(f => StopAsync(Path.GetFileNameWithoutExtension(f), say: say)))
            : Task.CompletedTask;

    /// <summary>Polls every pending service (in parallel, every 0.2 s) until all are ready; throws when one exits or the deadline passes.</summary>
    public async Task WaitReadyAsync(IReadOnlyList<LocalService> services, DateTimeOffset deadline)
    {
        var pending = services.ToList();
        while (pending.Count > 0)
        {
            var ready = await Task.WhenAll(pending.Select(s => ReadyAsync(s)));
            var next = new List<LocalService>();
            for (var i = 0; i < pending.Count; i++)
            {
                if (ready[i])
                {
                    continue;
                }

                if (!Alive(pending[i].Name))
                {
                    throw new LocalSystemException($"{pending[i].Name} exited; see .geo/logs/{pending[i].Name}.log");
                }

                next.Add(pending[i]);
            }

            pending = next;
            if (pending.Count == 0)
            {
                break;
            }

            if (Time.GetUtcNow() >= deadline)
            {
                throw new LocalSystemException($"not ready after 300 s: {string.Join(' ', pending.Select(p => $"{p.Service.Project} {p.Region}"))}; see .geo/logs/");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), Time);
        }
    }
}
