using System.Diagnostics;
using System.Globalization;

namespace Geo.Dev;

/// <summary>
/// A process that outlives the one starting it: a session of its own (<c>setsid</c>, so no terminal's hangup or Ctrl-C
/// reaches it), output appended to nothing but its log file (truncated at start), stdin from /dev/null, and its pid in a
/// file — the shell records <c>$$</c>, which stays the program's pid after <c>exec</c>. A later process finds it by that
/// file and tells it alive by /proc (<see cref="ChildProcesses.IsAlive"/>).
/// </summary>
public static class DetachedProcess
{
    /// <summary>Starts <paramref name="file"/> with <paramref name="args"/> detached; returns its pid once the pid file holds it.</summary>
    public static async Task<int> StartAsync(string file, IEnumerable<string> args, string pidFile, string logFile,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        File.Delete(pidFile);
        var info = new ProcessStartInfo("setsid") { UseShellExecute = false };
        foreach (var arg in (string[])["sh", "-c", "echo $$ > \"$1\"; log=\"$2\"; shift 2; exec \"$@\" > \"$log\" 2>&1 < /dev/null", "sh", pidFile, logFile, file, .. args])
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        using (Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}"))
        {
        }

        for (var waited = 0; waited < 5000; waited += 20)
        {
            if (ReadPid(pidFile) is { } pid)
            {
                return pid;
            }

            await Task.Delay(20);
        }

        throw new InvalidOperationException($"{file} did not record its pid in {pidFile} within 5 s");
    }

    /// <summary>The pid recorded in <paramref name="pidFile"/>, or null when there is none (yet).</summary>
    public static int? ReadPid(string pidFile)
    {
        try
        {
            return int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
