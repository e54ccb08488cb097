using System.CommandLine;
using System.CommandLine.Parsing;
using Geo.Cli.Auth;
using Geo.Cli.Bench;
using Geo.Cli.Capacity;
using Geo.Cli.Checkpoints;
using Geo.Cli.CommandLine;
using Geo.Cli.Dev;
using Geo.Cli.Migrations;
using Geo.Cli.Replication;
using Geo.Cli.Shards;
using Geo.Cli.Status;
using Geo.Cli.Topology;

namespace Geo.Cli;

/// <summary>The geoctl command tree and the one place where failures become exit codes.</summary>
internal static class GeoCtl
{
    public static RootCommand CreateRootCommand(CliHost host)
    {
        var globals = new GlobalOptions();
        var root = new RootCommand("geoctl: administer a Geo deployment (capacity, topology, shard migrations).");
        globals.AddTo(root);
        root.Add(CapacityCommand.Create(host, globals));
        root.Add(TopologyCommands.Create(host, globals));
        root.Add(MigrateCommand.Create(host, globals));
        root.Add(ShardsCommands.Create(host, globals));
        root.Add(UsersCommands.Create(host, globals));
        root.Add(UsersCommands.CreateConflicts(host, globals));
        root.Add(ReplicationCommands.Create(host, globals));
        root.Add(ReplicationCommands.CreateVerify(host, globals));
        root.Add(BenchCommands.Create(host, globals));
        root.Add(CheckpointsCommand.Create(host, globals));
        root.Add(StatusPageCommand.Create(host, globals));
        root.Add(AuthCommands.Create(host, globals));
        root.Add(DevCommands.Create(host));
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliHost host, CancellationToken ct = default)
    {
        var parse = CreateRootCommand(host).Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await host.Error.WriteLineAsync($"error: {Describe(error)}");
            }

            var command = string.Join(' ', CommandPath(parse.CommandResult));
            await host.Error.WriteLineAsync($"Run '{command} --help' for usage.");
            return ExitCodes.Usage;
        }

        var configuration = new InvocationConfiguration { Output = host.Out, Error = host.Error, EnableDefaultExceptionHandler = false };
        try
        {
            return await parse.InvokeAsync(configuration, ct);
        }
        catch (GeoCliException e)
        {
            await host.Error.WriteLineAsync($"error: {e.Message}");
            return e.ExitCode;
        }
        catch (Grpc.Core.RpcException e) when (GeoCliException.IsUnreachable(e))
        {
            // A service that could not be reached in time is unavailable (exit 5), not a defect of geoctl.
            await host.Error.WriteLineAsync($"error: a service did not answer: {e.Status.StatusCode} ({e.Status.DebugException?.GetBaseException().Message ?? e.Status.Detail})");
            return ExitCodes.Unavailable;
        }
        catch (OperationCanceledException)
        {
            await host.Error.WriteLineAsync("Cancelled.");
            return ExitCodes.Cancelled;
        }
#pragma warning disable CA1031 // The boundary: anything unforeseen is reported once, with its stack, as exit code 1.
        catch (Exception e)
#pragma warning restore CA1031
        {
            await host.Error.WriteLineAsync($"error: unexpected failure, please report it: {e}");
            return ExitCodes.Unexpected;
        }
    }

    // System.CommandLine's messages do not always say which option a bad value was for ("Argument 'xml' not recognized").
    private static string Describe(ParseError error)
    {
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        return option is null || error.Message.Contains(option.Name, StringComparison.Ordinal) ? error.Message : $"{option.Name}: {error.Message}";
    }

    private static IEnumerable<string> CommandPath(SymbolResult? result)
    {
        var names = new Stack<string>();
        for (var r = result; r is not null; r = r.Parent)
        {
            if (r is CommandResult c)
            {
                names.Push(c.Command is RootCommand ? "geoctl" : c.Command.Name);
            }
        }

        return names;
    }
}
