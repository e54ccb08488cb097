using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Geo.Testing;

/// <summary>Runs helper binaries and makes sure long-lived servers die with the test process.</summary>
internal static class ChildProcesses
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
