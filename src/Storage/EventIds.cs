namespace Geo.Storage;

/// <summary>
/// Event ids of Geo.Storage log messages (range 2000–2199). Every assembly has its own range, listed in
/// docs/operations.md ("Log event ids"), so no two messages in one process share an id.
/// </summary>
internal static class EventIds
{
    public const int MigrationApplied = 2000;
    public const int MigrationsUpToDate = 2001;
    public const int RemoteChangeQuarantined = 2010;
    public const int ConflictRecorded = 2011;
    public const int UserErased = 2020;
    public const int EraseStepSkipped = 2021;
    public const int ChangeLogPruned = 2030;
    public const int ChangeNotifyFailed = 2031;
    public const int CacheUnavailable = 2101;
}
