namespace Geo.RegionService;

/// <summary>
/// Log event ids of Geo.RegionService (range 2200–2299). Every assembly has its own range, listed in
/// docs/operations.md ("Log event ids"), so no two messages in one process share an id.
/// </summary>
internal static class EventIds
{
    public const int ShardMigrated = 2201;
    public const int ShardMigrationFailed = 2202;
    public const int DirectoryUnavailable = 2210;
    public const int LocalEraseDeferred = 2211;
}
