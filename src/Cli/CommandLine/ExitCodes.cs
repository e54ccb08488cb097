namespace Geo.Cli.CommandLine;

/// <summary>The process exit codes of geoctl; documented in src/Cli/README.md, stable for scripts.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>A bug or an error geoctl did not anticipate; the message and stack trace go to stderr.</summary>
    public const int Unexpected = 1;

    /// <summary>Bad command line: unknown command or option, missing or out-of-range value.</summary>
    public const int Usage = 2;

    /// <summary>A named thing does not exist: topology file, region, shard.</summary>
    public const int NotFound = 3;

    /// <summary>Refused: an admin token is needed, or the change was not confirmed (no terminal and no --yes, or answered no).</summary>
    public const int Refused = 4;

    /// <summary>A dependency (a shard's Postgres, a service) could not be reached.</summary>
    public const int Unavailable = 5;

    /// <summary>The topology document is invalid; every error is printed.</summary>
    public const int InvalidTopology = 6;

    /// <summary>The operation ran but failed on at least one target; the result lists which.</summary>
    public const int Failed = 7;

    /// <summary>Interrupted (Ctrl+C), as shells report SIGINT.</summary>
    public const int Cancelled = 130;
}
