using System.Globalization;
using System.Text.Json;
using Geo.Dev;
using Geo.Testing.Services;

namespace Geo.Observability;

/// <summary>
/// What the services cost a host that also runs other work: they do not watch the directory they were started in,
/// and their thread-pool workers do not spin while waiting for work (the services' runtime configuration).
/// </summary>
[Collection(ObservedSystemCollection.Name)]
public sealed class RuntimeSettingsTests(ObservedSystem system)
{
    [Fact]
    public void No_service_watches_the_directory_it_was_started_in()
    {
        // The harness starts the services in its own working directory, as ./geo up starts them in the repository root.
        // A host whose content root is the working directory watches it, subdirectories included.
        var startedIn = Inode(Directory.GetCurrentDirectory());
        var ownDirectories = system.Services.Select(s => Inode(Path.GetDirectoryName(ServiceProcess.AssemblyPath(s.Project))!)).ToHashSet();
        Assert.DoesNotContain(startedIn, ownDirectories); // else the check below could not tell the two apart
        Assert.NotEmpty(system.Services);
        foreach (var service in system.Services)
        {
            var watched = WatchedInodes(service.ProcessId ?? throw new InvalidOperationException($"{service.Project} is not running"));
            Assert.DoesNotContain(startedIn, watched);
        }
    }

    [Fact]
    public void The_services_thread_pool_workers_do_not_spin_while_waiting_for_work()
    {
        foreach (var service in GeoService.All)
        {
            var runtimeConfig = Path.ChangeExtension(ServiceProcess.AssemblyPath(service.Project), ".runtimeconfig.json");
            using var json = JsonDocument.Parse(File.ReadAllText(runtimeConfig));
            var spin = json.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit");
            Assert.Equal(0, spin.GetInt32());
        }
    }

    /// <summary>The inode numbers of every inotify watch the process holds (<c>/proc/PID/fdinfo</c> of its inotify descriptors).</summary>
    private static HashSet<ulong> WatchedInodes(int pid)
    {
        var inodes = new HashSet<ulong>();
        foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
        {
            if (new FileInfo(fd).LinkTarget != "anon_inode:inotify")
            {
                continue;
            }

            foreach (var line in File.ReadLines($"/proc/{pid}/fdinfo/{Path.GetFileName(fd)}").Where(l => l.StartsWith("inotify ", StringComparison.Ordinal)))
            {
                var ino = line.Split(' ').Single(f => f.StartsWith("ino:", StringComparison.Ordinal))[4..];
                inodes.Add(ulong.Parse(ino, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }

        return inodes;
    }

    /// <summary>A directory's inode number (stat(1): .NET has no API for it).</summary>
    private static ulong Inode(string path)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return ulong.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }
}
