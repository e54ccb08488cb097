namespace Geo.EdgeRouter;

/// <summary>
/// Log event ids of Geo.EdgeRouter (range 3200–3299, one block per feature). Every assembly has its own range, listed
/// in docs/operations.md ("Log event ids"), so no two messages in one process share an id.
/// </summary>
internal static class EventIds
{
    public const int LocalDirectoryFailed = 3201;
    public const int FoundAtPeer = 3202;
    public const int Routed = 3211;
    public const int NoAllowedRegionHealthy = 3212;
    public const int ResidencyGuardTripped = 3213;
    public const int DirectoryUnavailable = 3214;
    public const int RetriedAfterConnectFailure = 3215;
}
