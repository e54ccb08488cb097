using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Testcontainers.PostgreSql;
using Xunit;

namespace Geo.Testing;

/// <summary>
/// A PostgreSQL server for tests, shared by every test class of an assembly
/// (<c>[assembly: AssemblyFixture(typeof(PostgresServer))]</c>). Chooses, in order: the server named by
/// <c>GEO_TEST_POSTGRES</c>; a Testcontainers container when a Docker engine answers; a throwaway cluster
/// from the installed binaries (run as <c>postgres</c> when this process is root) on a free loopback port.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    /// <summary>Environment variable holding a connection string to an existing server.</summary>
    public const string EnvironmentVariable = "GEO_TEST_POSTGRES";

    private static readonly string[] ExtraBinDirectories = ["/usr/local/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];
    private readonly List<string> _databases = [];
    private PostgreSqlContainer? _container;
    private LocalCluster? _local;
    private string? _adminConnectionString;
    private int _databaseCounter;

    /// <summary><c>external</c>, <c>testcontainers</c> or <c>local-binaries</c>.</summary>
    public string Mode { get; private set; } = "not-started";

    /// <summary>Connection string of the maintenance database (<c>postgres</c>) as a superuser.</summary>
    public string AdminConnectionString => _adminConnectionString ?? throw new InvalidOperationException("PostgresServer has not been initialized.");

    public async ValueTask InitializeAsync()
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            Mode = "external";
            _adminConnectionString = external;
        }
        else if (DockerProbe.EngineAnswers())
        {
            Mode = "testcontainers";
            _container = new PostgreSqlBuilder("postgres:15-alpine").WithCommand("-c", "fsync=off", "-c", "max_connections=300").Build();
            await _container.StartAsync();
            _adminConnectionString = _container.GetConnectionString();
        }
        else
        {
            Mode = "local-binaries";
            _local = await LocalCluster.StartAsync();
            _adminConnectionString = _local.ConnectionString;
        }

        await Console.Error.WriteLineAsync($"[geo-testing] PostgresServer mode: {Mode}");
    }

    /// <summary>Creates an empty database and returns a connection string to it.</summary>
    /// <param name="prefix">Readable start of the database name, e.g. the test class.</param>
    /// <param name="ct">Cancels the CREATE DATABASE.</param>
    public async Task<string> CreateDatabaseAsync(string? prefix = null, CancellationToken ct = default)
    {
        var stem = new string((prefix ?? "geo").ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').Take(40).ToArray());
        var name = string.Create(CultureInfo.InvariantCulture, $"{stem}_{Interlocked.Increment(ref _databaseCounter)}_{Guid.NewGuid().ToString("N")[..8]}");
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync(ct);
        }

        lock (_databases)
        {
            _databases.Add(name);
        }

        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>
    /// Kills the server the way a crash does: SIGKILL to the postmaster and every one of its processes, nothing
    /// flushed, no shutdown checkpoint. Only for the throwaway cluster of the installed binaries (<see cref="Mode"/>
    /// <c>local-binaries</c>); <see cref="StartAgainAsync"/> brings it back through crash recovery.
    /// </summary>
    public Task CrashAsync() => Local().CrashAsync();

    /// <summary>Starts the cluster again on the same data directory and port, with <paramref name="settings"/> (<c>name=value</c>) on top of the usual ones from now on.</summary>
    public Task StartAgainAsync(params string[] settings) => Local().StartAgainAsync(settings);

    /// <summary>A clean restart (fast shutdown, then start) with <paramref name="settings"/> from now on, e.g. <c>synchronous_commit=on</c> for a test that crashes the server.</summary>
    public async Task RestartAsync(params string[] settings)
    {
        await Local().StopAsync();
        await Local().StartAgainAsync(settings);
    }

    private LocalCluster Local() => _local ?? throw new InvalidOperationException(
        $"Crashing or restarting the server needs the throwaway cluster of the installed binaries; this run uses mode '{Mode}'.");

    public async ValueTask DisposeAsync()
    {
        if (Mode == "external")
        {
            await DropDatabasesAsync();
        }

        if (_container is not null)
        {
            await _container.DisposeAsync();
        }

        _local?.Dispose();
    }

    private async Task DropDatabasesAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        foreach (var name in _databases)
        {
            await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    /// <summary>A cluster in a temp directory; stopped and deleted on dispose, at process exit, or by a watchdog if the process dies.</summary>
    private sealed class LocalCluster : IDisposable
    {
        private readonly string _root;
        private readonly string _pgCtl;
        private readonly int _port;
        private readonly List<string> _extraSettings = [];
        private Process? _watchdog;
        private int _disposed;

        private LocalCluster(string root, string pgCtl, int port)
        {
            _root = root;
            _pgCtl = pgCtl;
            _port = port;
            ConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=true;Maximum Pool Size=50;Timeout=15";
        }

        public string ConnectionString { get; }

        private string DataDirectory => Path.Combine(_root, "data");

        public static async Task<LocalCluster> StartAsync()
        {
            var initdb = ChildProcesses.Find("initdb", ExtraBinDirectories)
                ?? throw new InvalidOperationException("PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin. Install them, e.g. `apt-get install -y postgresql`, or set GEO_TEST_POSTGRES.");
            var pgCtl = Path.Combine(Path.GetDirectoryName(initdb)!, "pg_ctl");
            var root = Path.Combine(Path.GetTempPath(), $"geo-pg-{Guid.NewGuid():N}");
            Directory.CreateDirectory(root);
            if (ChildProcesses.IsRoot)
            {
                await ChildProcesses.RunAsync("chown", ["postgres:postgres", root], TimeSpan.FromSeconds(10));
            }

            var port = FreePort.Next();
            var cluster = new LocalCluster(root, pgCtl, port);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => cluster.Dispose();
            try
            {
                await cluster.InitAndStartAsync(initdb, port);
                return cluster;
            }
            catch
            {
                cluster.Dispose();
                throw;
            }
        }

        private async Task InitAndStartAsync(string initdb, int port)
        {
            var (file, args) = ChildProcesses.As("postgres", initdb, "-D", DataDirectory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions");
            await ChildProcesses.RunAsync(file, args, TimeSpan.FromSeconds(60));

            await StartServerAsync();
        }

        private string Options() => string.Join(' ', [
            $"-p {_port} -k {_root} -c listen_addresses=127.0.0.1",
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            "-c shared_buffers=32MB -c max_locks_per_transaction=256",
            .. _extraSettings.Select(setting => $"-c {setting}"),
        ]);

        private int PostmasterPid() => int.Parse(File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).First(), CultureInfo.InvariantCulture);

        private async Task StartServerAsync()
        {
            var (file, args) = ChildProcesses.As("postgres", _pgCtl, "start", "-D", DataDirectory, "-w", "-t", "60", "-l", Path.Combine(_root, "postgres.log"), "-o", Options());
            await ChildProcesses.RunAsync(file, args, TimeSpan.FromSeconds(70));
            _watchdog = ChildProcesses.Watch(PostmasterPid(), "QUIT", _root);
        }

        // The watchdog removes the data directory when the server is gone: it must not see a planned stop or crash.
        private void StopWatchdog()
        {
            if (_watchdog is { } watchdog)
            {
                watchdog.Kill(entireProcessTree: true);
                watchdog.WaitForExit(TimeSpan.FromSeconds(10));
                watchdog.Dispose();
                _watchdog = null;
            }
        }

        public async Task CrashAsync()
        {
            StopWatchdog();
            var pid = PostmasterPid();
            await ChildProcesses.RunAsync("pkill", ["-KILL", "-P", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10), allowFailure: true);
            await ChildProcesses.RunAsync("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10), allowFailure: true);
            // Killed processes may stay zombies here (nothing reaps orphans), and a zombie's pid in the lock files would
            // make the next start refuse ("another postmaster is running"): they are ours and dead, so remove them.
            for (var i = 0; i < 100 && !IsDead(pid); i++)
            {
                await Task.Delay(50);
            }

            File.Delete(Path.Combine(DataDirectory, "postmaster.pid"));
            File.Delete(Path.Combine(_root, $".s.PGSQL.{_port}.lock"));
            NpgsqlConnection.ClearAllPools();
        }

        public async Task StopAsync()
        {
            StopWatchdog();
            var (file, args) = ChildProcesses.As("postgres", _pgCtl, "stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "60");
            await ChildProcesses.RunAsync(file, args, TimeSpan.FromSeconds(70));
            NpgsqlConnection.ClearAllPools();
        }

        public async Task StartAgainAsync(IEnumerable<string> settings)
        {
            _extraSettings.AddRange(settings.Where(setting => !_extraSettings.Contains(setting)));
            await StartServerAsync();
        }

        private static bool IsDead(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
            }
            catch (IOException)
            {
                return true; // reaped
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
            {
                return;
            }

            NpgsqlConnection.ClearAllPools();
            try
            {
                if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
                {
                    var (file, args) = ChildProcesses.As("postgres", _pgCtl, "stop", "-D", DataDirectory, "-m", "immediate", "-w", "-t", "20");
                    ChildProcesses.RunAsync(file, args, TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
                }
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException)
            {
                Console.Error.WriteLine($"[geo-testing] pg_ctl stop failed, the watchdog will kill the server: {e.Message}");
            }

            // The watchdog notices the server is gone, removes the directory and exits.
            _watchdog?.WaitForExit(TimeSpan.FromSeconds(10));
            _watchdog?.Dispose();
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
                // The watchdog removed it first: both may, whichever runs last finds nothing left.
            }
        }
    }
}
