namespace Geo.EdgeRouter;

/// <summary>Log event ids of the edge router, one range per feature.</summary>
internal static class EventIds
{
    public const int LocalDirectoryFailed = 3001;
    public const int FoundAtPeer = 3002;
    public const int Routed = 3101;
    public const int NoAllowedRegionHealthy = 3102;
    public const int ResidencyGuardTripped = 3103;
    public const int DirectoryUnavailable = 3104;
    public const int RetriedAfterConnectFailure = 3105;
}
