using Geo.Dev;

namespace Geo.Cli.Dev;

/// <summary>
/// <c>./geo up --prometheus</c>: a Prometheus on 127.0.0.1:9090 with the alerting rules (ops/prometheus/rules) and a
/// scrape configuration written by ops/prometheus/generate for the local topology (every service over https with the
/// admin certificate of .geo/pki); configuration and data in .geo/prometheus, detached like the services.
/// </summary>
internal sealed class LocalPrometheus(LocalPaths paths)
{
    public const string Address = "127.0.0.1:9090";

    private string Dir => Path.Combine(paths.GeoDir, "prometheus");

    private string PidFile => Path.Combine(Dir, "prometheus.pid");

    public async Task StartAsync(TextWriter say)
    {
        Directory.CreateDirectory(Path.Combine(Dir, "data"));
        Directory.CreateDirectory(paths.Logs);
        var config = Path.Combine(Dir, "prometheus.yml");
        if (Running(config))
        {
            return;
        }

        await ChildProcesses.RunAsync(Path.Combine(paths.Root, "ops", "prometheus", "generate"),
            ["--topology", paths.Topology, "--ca-file", Path.Combine(paths.Pki, "ca.crt"), "--cert-file", Path.Combine(paths.Pki, "global-admin.crt"),
             "--key-file", Path.Combine(paths.Pki, "global-admin.key"), "--rules-dir", Path.Combine(paths.Root, "ops", "prometheus", "rules"), "-o", config],
            TimeSpan.FromSeconds(60));
        await DetachedProcess.StartAsync("prometheus", [$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(Dir, "data")}", $"--web.listen-address={Address}"],
            PidFile, paths.Log("prometheus"));

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
        for (var i = 0; i < 100; i++)
        {
            try
            {
                using var response = await http.GetAsync(new Uri($"http://{Address}/-/ready"));
                if (response.IsSuccessStatusCode)
                {
                    await say.WriteLineAsync($"geo: prometheus on http://{Address}");
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(300);
        }

        throw new LocalSystemException("prometheus did not become ready; see .geo/logs/prometheus.log");
    }

    public async Task StopAsync()
    {
        if (Pid() is { } pid && Running(Path.Combine(Dir, "prometheus.yml")))
        {
            await ChildProcesses.TerminateAsync(pid, TimeSpan.FromSeconds(10));
        }

        if (File.Exists(PidFile))
        {
            File.Delete(PidFile);
        }
    }

    private int? Pid() => DetachedProcess.ReadPid(PidFile);

    private bool Running(string config) => Pid() is { } pid && ChildProcesses.IsAlive(pid) && ChildProcesses.CommandLine(pid)?.Contains(config, StringComparison.Ordinal) == true;
}
