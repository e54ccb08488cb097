using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Geo.Dev;

/// <summary>
/// Runs helper binaries, tells a live process from a gone one by /proc (never <c>kill -0</c>: the init of a container may
/// reap no orphans, and a zombie answers it), signals processes, and makes sure a test's long-lived servers die with it.
/// </summary>
public static class ChildProcesses
{
    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>Runs a command to completion; throws with its output when it fails or overruns.</summary>
    public static async Task<string> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout, CancellationToken ct = default)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', info.ArgumentList)} did not finish within {timeout}:\n{Text(output)}");
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', info.ArgumentList)} exited with {process.ExitCode}:\n{Text(output)}");
        }

        return Text(output);
    }

    /// <summary>Prefixes a command so it runs as <paramref name="user"/> when this process is root.</summary>
    public static (string File, string[] Args) As(string user, string file, params string[] args) =>
        IsRoot ? ("runuser", ["-u", user, "--", file, .. args]) : (file, args);

    /// <summary>
    /// Starts a detached shell that sends <paramref name="signal"/> to <paramref name="pid"/> and removes
    /// <paramref name="directory"/> once this process is gone (even after SIGKILL), or once the target exits.
    /// </summary>
    public static Process Watch(int pid, string signal, string? directory)
    {
        var self = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var target = pid.ToString(CultureInfo.InvariantCulture);
        var script = $"""
            exec >/dev/null 2>&1 </dev/null
            while [ -d /proc/{self} ] && kill -0 {target}; do sleep 0.5; done
            kill -{signal} {target}
            for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 {target} || break; sleep 0.5; done
            kill -KILL {target}
            {(directory is null ? string.Empty : $"rm -rf '{directory}'")}
            """;
        var info = new ProcessStartInfo("setsid", ["sh", "-c", script]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        return Process.Start(info) ?? throw new InvalidOperationException("could not start the watchdog shell");
    }

    /// <summary>The parent pid of <paramref name="pid"/> from /proc, or null when it is gone.</summary>
    public static int? ParentOf(int pid)
    {
        var stat = Stat(pid);
        return stat is null ? null : int.Parse(stat[1], CultureInfo.InvariantCulture);
    }

    /// <summary>Running and not a zombie (kill -0 succeeds on a zombie, and this container's init does not reap orphans).</summary>
    public static bool IsAlive(int pid) => Stat(pid) is { } stat && stat[0] != "Z";

    /// <summary>The fields of /proc/{pid}/stat after the command name (state first), or null.</summary>
    private static string[]? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            return text[(text.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The command line of <paramref name="pid"/> (arguments joined by spaces), or null when it is gone.</summary>
    public static string? CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline").Replace('\0', ' ');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Sends <paramref name="signal"/> (TERM, KILL, STOP, CONT …) to <paramref name="pid"/>; false when kill failed (e.g. gone).</summary>
    public static async Task<bool> SignalAsync(int pid, string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { $"-{signal}", pid.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false })
            ?? throw new InvalidOperationException("could not start kill");
        await kill.WaitForExitAsync();
        return kill.ExitCode == 0;
    }

    /// <summary>
    /// Planned stop of a process that is not this one's child: SIGTERM, then waits until it is gone (or a zombie);
    /// SIGKILL after <paramref name="limit"/>. False when it had to be killed.
    /// </summary>
    public static async Task<bool> TerminateAsync(int pid, TimeSpan limit, CancellationToken ct = default)
    {
        if (!IsAlive(pid))
        {
            return true;
        }

        await SignalAsync(pid, "TERM");
        var waited = Stopwatch.StartNew();
        while (IsAlive(pid))
        {
            if (waited.Elapsed > limit)
            {
                await SignalAsync(pid, "KILL");
                return false;
            }

            await Task.Delay(100, ct);
        }

        return true;
    }

    /// <summary>Finds an executable on PATH or in one of the extra directories.</summary>
    public static string? Find(string name, params string[] extraDirectories)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        return path.Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(extraDirectories)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }
}
