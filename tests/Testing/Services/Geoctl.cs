using System.Diagnostics;
using System.Text;
using Geo.Testing.Security;

namespace Geo.Testing.Services;

/// <summary>
/// geoctl, the built Cli, as a child process of a test: the one place tests start it (its assembly, its credentials).
/// By default it presents the run's admin certificate (<c>GEO_PKI</c> = <see cref="TestPki.Directory"/>).
/// </summary>
public static class Geoctl
{
    /// <summary>The built <c>geoctl.dll</c>, in the same configuration as the running tests.</summary>
    public static string AssemblyPath()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var path = Path.Combine(ServiceProcess.RepositoryRoot(), "src", "Cli", "bin", configuration, "net10.0", "geoctl.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build the Cli first (dotnet build src/Cli -c {configuration}); not found: {path}");
    }

    /// <summary>
    /// Runs geoctl to completion and returns its exit code and output. With <see cref="GeoctlOptions.KillWhen"/>, kills
    /// it as soon as stderr shows that text (a crash at a chosen step); past <see cref="GeoctlOptions.Timeout"/> or on
    /// <paramref name="ct"/>, kills it and throws.
    /// </summary>
    public static async Task<GeoctlRun> RunAsync(IEnumerable<string> args, GeoctlOptions? options = null, CancellationToken ct = default)
    {
        options ??= new GeoctlOptions();
        using var process = new Process { StartInfo = StartInfo(args, options.Pki, redirect: true, options.WorkingDirectory) };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        string? killedAt = null;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stdout)
                {
                    stdout.AppendLine(e.Data);
                }
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }

            if (options.KillWhen is { } text && killedAt is null && e.Data.Contains(text, StringComparison.Ordinal))
            {
                killedAt = e.Data;
                process.Kill(entireProcessTree: true);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        process.WaitForExit(); // the output's last lines
        lock (stdout)
        {
            lock (stderr)
            {
                return new GeoctlRun(process.ExitCode, stdout.ToString(), stderr.ToString(), killedAt);
            }
        }
    }

    /// <summary>Starts geoctl in the background (a server such as <c>status-page</c>), its output going to the test's; the caller kills it.</summary>
    public static Process Start(IEnumerable<string> args, string? pki = null) =>
        Process.Start(StartInfo(args, pki ?? TestPki.Directory, redirect: false, workingDirectory: null))
            ?? throw new InvalidOperationException("could not start geoctl");

    private static ProcessStartInfo StartInfo(IEnumerable<string> args, string? pki, bool redirect, string? workingDirectory)
    {
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = redirect, RedirectStandardError = redirect };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }

        info.ArgumentList.Add(AssemblyPath());
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment.Remove("GEO_PKI");
        if (pki is not null)
        {
            info.Environment["GEO_PKI"] = pki;
        }

        return info;
    }
}

/// <summary>How <see cref="Geoctl.RunAsync"/> runs geoctl.</summary>
public sealed record GeoctlOptions
{
    /// <summary>The folder geoctl reads its admin certificate from; null: none (and no <c>GEO_PKI</c>).</summary>
    public string? Pki { get; init; } = TestPki.Directory;

    /// <summary>The working directory (geoctl looks for <c>.geo/pki</c> above it when <c>GEO_PKI</c> is unset); null: the test's.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Kill geoctl as soon as its stderr shows this text; null: never.</summary>
    public string? KillWhen { get; init; }

    /// <summary>At most this long; then geoctl is killed and the run throws.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(3);
}

/// <summary>One finished geoctl run; <see cref="KilledAt"/> is the stderr line that had it killed, if any.</summary>
public sealed record GeoctlRun(int ExitCode, string Stdout, string Stderr, string? KilledAt)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}
