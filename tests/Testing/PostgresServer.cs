using System.Diagnostics;
using System.Globalization;
using Geo.Dev;
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

    /// <summary>True for a cluster from the installed binaries, which tests may kill, suspend and restart (the fault campaign).</summary>
    public bool CanFault => _local is not null;

    /// <summary>SIGKILL of the postmaster and every backend (a crash); <see cref="RestartAsync"/> brings it back.</summary>
    public Task KillAsync() => Owned.KillAsync();

    /// <summary>SIGSTOP of the postmaster and every backend (a hung server whose sockets stay open); <see cref="ResumeAsync"/> undoes it.</summary>
    public Task SuspendAsync() => Owned.SignalAllAsync("STOP");

    /// <summary>SIGCONT of the processes <see cref="SuspendAsync"/> stopped.</summary>
    public Task ResumeAsync() => Owned.SignalAllAsync("CONT");

    /// <summary>Starts the killed server again on the same data directory and port (crash recovery runs).</summary>
    public Task RestartAsync() => Owned.StartAgainAsync();

    private LocalCluster Owned => _local ?? throw new InvalidOperationException($"A PostgresServer in mode {Mode} cannot be killed or suspended by tests.");

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
            await StartServerAsync(port);
        }

        private async Task StartServerAsync(int port)
        {
            var options = string.Join(' ',
                $"-p {port} -k {_root} -c listen_addresses=127.0.0.1",
                // synchronous_commit stays on: the fault campaign SIGKILLs this server, and a commit acknowledged before
                // its WAL left the server's memory is lost then (it lost acknowledged writes so). With fsync off the
                // WAL write ends in the OS cache, which outlives the process, and costs one write() per commit.
                "-c fsync=off -c synchronous_commit=on -c full_page_writes=off -c max_connections=300",
                "-c shared_buffers=32MB -c max_locks_per_transaction=256");
            var (file, args) = ChildProcesses.As("postgres", _pgCtl, "start", "-D", DataDirectory, "-w", "-t", "60", "-l", Path.Combine(_root, "postgres.log"), "-o", options);
            await ChildProcesses.RunAsync(file, args, TimeSpan.FromSeconds(70));
            _watchdog = ChildProcesses.Watch(Postmaster(), "QUIT", _root);
        }

        private int Postmaster() => int.Parse(File.ReadLines(Path.Combine(DataDirectory, "postmaster.pid")).First(), CultureInfo.InvariantCulture);

        /// <summary>The postmaster and its children (backends, checkpointer, walwriter …).</summary>
        private List<int> ServerProcesses()
        {
            var postmaster = Postmaster();
            var pids = new List<int> { postmaster };
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid) && ChildProcesses.ParentOf(pid) == postmaster)
                {
                    pids.Add(pid);
                }
            }

            return pids;
        }

        public async Task SignalAllAsync(string signal)
            => await ChildProcesses.RunAsync("kill", [$"-{signal}", .. ServerProcesses().Select(p => p.ToString(CultureInfo.InvariantCulture))], TimeSpan.FromSeconds(10));

        public async Task KillAsync()
        {
            // The watchdog removes the data directory once the server is gone: stop it first.
            if (_watchdog is { } watchdog)
            {
                watchdog.Kill();
                await watchdog.WaitForExitAsync();
                watchdog.Dispose();
                _watchdog = null;
            }

            var pids = ServerProcesses();
            await ChildProcesses.RunAsync("kill", ["-KILL", .. pids.Select(p => p.ToString(CultureInfo.InvariantCulture))], TimeSpan.FromSeconds(10));
            var deadline = Stopwatch.StartNew();
            while (pids.Any(ChildProcesses.IsAlive))
            {
                if (deadline.Elapsed > TimeSpan.FromSeconds(20))
                {
                    throw new TimeoutException("PostgreSQL processes survived SIGKILL for 20 s");
                }

                await Task.Delay(50);
            }

            // A killed postmaster left as a zombie still answers kill -0, so the next start would take its lock files
            // for a live server's: remove them (every process of the server is dead or a zombie now).
            File.Delete(Path.Combine(DataDirectory, "postmaster.pid"));
            File.Delete(Path.Combine(_root, $".s.PGSQL.{_port}.lock"));
            File.Delete(Path.Combine(_root, $".s.PGSQL.{_port}"));
        }

        public Task StartAgainAsync() => StartServerAsync(_port);

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
