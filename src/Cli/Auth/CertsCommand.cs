using System.CommandLine;
using Geo.Cli.CommandLine;
using Geo.Core.Tls;

namespace Geo.Cli.Auth;

/// <summary>
/// <c>geoctl auth certs --out DIR</c>: the deployment's local CA and one certificate per region and role of the topology
/// (edge, api, directory, replicator) plus the admin's, as PEM files (<see cref="GeoPki"/>). Keeps what is there unless
/// <c>--force</c>; a missing CA is made anew and every certificate reissued from it. For local and test systems: a
/// cloud deployment keeps its CA offline and stores the issued files in its secret store.
/// </summary>
internal static class CertsCommand
{
    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for ca.crt/ca.key and {region}-{role}.crt/.key.", HelpName = "dir", Required = true };
        var force = new Option<bool>("--force") { Description = "Make a new CA and reissue every certificate." };
        var certs = new Command("certs", "Create the local CA and the mutual-TLS certificates of every region and role (PEM files; never check them in).") { output, force };
        certs.SetAction(parse => Run(new CommandContext(parse, host, globals), parse.GetValue(output)!, parse.GetValue(force)));
        return certs;
    }

    private static int Run(CommandContext context, DirectoryInfo output, bool force)
    {
        var topology = context.LoadTopology();
        var dir = Path.GetFullPath(output.ToString(), context.CurrentDirectory);
        var written = GeoPki.Provision(dir, topology.Regions.Keys, force);
        if (context.Json)
        {
            context.WriteJson(new { directory = dir, written = written.Select(i => i.ToString()).ToArray() });
        }
        else
        {
            context.WriteLine(written.Count == 0
                ? $"{dir}: every certificate is already there."
                : $"{dir}: wrote {written.Count} certificate(s): {string.Join(", ", written.Select(GeoPki.FileStem))}.");
        }

        return ExitCodes.Ok;
    }
}
