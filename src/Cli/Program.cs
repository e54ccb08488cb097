using Geo.Cli;
using Geo.Cli.CommandLine;

return await GeoCtl.RunAsync(args, CliHost.FromProcess());
