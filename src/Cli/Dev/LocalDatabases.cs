using System.Globalization;
using Geo.Core.Topology;
using Geo.Dev;
using Npgsql;

namespace Geo.Cli.Dev;

/// <summary>
/// The local PostgreSQL (127.0.0.1:5433, one cluster holding every region's shard and directory databases) and Redis
/// (127.0.0.1:6380, one logical database per region), started from the installed binaries and left running detached.
/// </summary>
internal sealed class LocalDatabases(LocalPaths paths, TextWriter say)
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private static string AdminConnectionString => $"Host=127.0.0.1;Port={LocalPaths.PostgresPort};Username=postgres;Database=postgres;Timeout=5";

    /// <summary>Creates the cluster unless it exists, starts it unless it runs, and creates every database of the topology.</summary>
    public async Task StartPostgresAsync(GeoTopology topology)
    {
        var data = paths.PostgresData();
        Directory.CreateDirectory(paths.Logs);
        Directory.CreateDirectory(Path.GetDirectoryName(data)!);
        if (ChildProcesses.IsRoot)
        {
            await ChildProcesses.RunAsync("chown", ["postgres", Path.GetDirectoryName(data)!], CommandTimeout);
        }

        if (!NonEmpty(Path.Combine(data, "PG_VERSION")))
        {
            await say.WriteLineAsync($"geo: creating the PostgreSQL cluster in {data}");
            await RunAsPostgresAsync("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8");
            await File.AppendAllTextAsync(Path.Combine(data, "postgresql.conf"), string.Create(CultureInfo.InvariantCulture,
                $"listen_addresses = '127.0.0.1'\nport = {LocalPaths.PostgresPort}\nmax_connections = 400\nunix_socket_directories = '{data}'\n"));
        }

        if (!await SucceedsAsync("pg_ctl", "-D", data, "status"))
        {
            var log = paths.Log("postgres");
            await File.AppendAllTextAsync(log, string.Empty);
            if (ChildProcesses.IsRoot)
            {
                await ChildProcesses.RunAsync("chown", ["postgres", log], CommandTimeout);
            }

            if (!await SucceedsAsync("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start"))
            {
                throw new LocalSystemException($"PostgreSQL did not start; see {log}");
            }
        }

        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        foreach (var database in Databases(topology))
        {
            await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = @name", connection);
            exists.Parameters.AddWithValue("name", database);
            if (await exists.ExecuteScalarAsync() is null)
            {
                await using var create = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection);
                await create.ExecuteNonQueryAsync();
            }
        }
    }

    /// <summary>Stops the cluster (fast shutdown: sessions are closed, nothing is lost); nothing when there is none.</summary>
    public async Task StopPostgresAsync()
    {
        var data = paths.PostgresData();
        if (NonEmpty(Path.Combine(data, "PG_VERSION")))
        {
            await SucceedsAsync("pg_ctl", "-D", data, "-m", "fast", "-w", "stop");
        }
    }

    public static Task<bool> PostgresReadyAsync() => SucceedsAsync("pg_isready", "-h", "127.0.0.1", "-p", LocalPaths.PostgresPort.ToString(CultureInfo.InvariantCulture));

    /// <summary>Starts Redis (daemonized, no persistence) unless one answers on the port.</summary>
    public async Task StartRedisAsync()
    {
        if (await RedisWire.PingAsync(LocalPaths.RedisPort))
        {
            return;
        }

        var dir = Path.Combine(paths.GeoDir, "redis");
        Directory.CreateDirectory(dir);
        Directory.CreateDirectory(paths.Logs);
        await ChildProcesses.RunAsync("redis-server", ["--port", LocalPaths.RedisPort.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", dir,
            "--save", string.Empty, "--appendonly", "no", "--daemonize", "yes", "--pidfile", Path.Combine(dir, "redis.pid"), "--logfile", paths.Log("redis")], CommandTimeout);
        for (var i = 0; i < 50; i++)
        {
            if (await RedisWire.PingAsync(LocalPaths.RedisPort))
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new LocalSystemException($"Redis did not start; see {paths.Log("redis")}");
    }

    public static Task StopRedisAsync() => RedisWire.ShutdownNoSaveAsync(LocalPaths.RedisPort);

    public static Task<bool> RedisReadyAsync() => RedisWire.PingAsync(LocalPaths.RedisPort);

    /// <summary>The database of every shard and directory of the topology.</summary>
    public static IEnumerable<string> Databases(GeoTopology topology) => topology.Regions.Values
        .SelectMany(r => r.Shards.Values.Append(r.DirectoryDatabase ?? string.Empty))
        .Select(cs => new NpgsqlConnectionStringBuilder(cs).Database)
        .OfType<string>()
        .Where(d => d.Length > 0)
        .Distinct(StringComparer.Ordinal);

    private static bool NonEmpty(string file) => File.Exists(file) && new FileInfo(file).Length > 0;

    private static async Task RunAsPostgresAsync(string tool, params string[] args)
    {
        var (file, argv) = ChildProcesses.As("postgres", tool, args);
        await ChildProcesses.RunAsync(file, argv, CommandTimeout);
    }

    private static async Task<bool> SucceedsAsync(string tool, params string[] args)
    {
        try
        {
            await RunAsPostgresAsync(tool, args);
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
