using Geo.RegionService.Directory;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Api;

/// <summary>The regional API's log messages (ids in <see cref="EventIds"/>).</summary>
internal static partial class RegionLog
{
    /// <summary>Logs that the directory did not answer and returns the 503 the client retries on.</summary>
    public static ProblemHttpResult DirectoryDown(this ILogger logger, DirectoryUnavailableException ex)
    {
        DirectoryUnavailable(logger, ex.Message);
        return RegionProblems.DirectoryUnavailable();
    }

    [LoggerMessage(EventId = EventIds.DirectoryUnavailable, Level = LogLevel.Warning, Message = "Directory unavailable: {Reason}")]
    private static partial void DirectoryUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = EventIds.LocalEraseDeferred, Level = LogLevel.Warning, Message = "Erase recorded in the directory; this region's shard step failed ({Reason}) and is left to the erase worker")]
    public static partial void LocalEraseDeferred(ILogger logger, string reason);
}
