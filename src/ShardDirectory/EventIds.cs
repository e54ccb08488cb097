namespace Geo.ShardDirectory;

/// <summary>
/// Event ids of Geo.ShardDirectory log messages (range 3000–3099). Every assembly has its own range, listed in
/// docs/operations.md ("Log event ids"), so no two messages in one process share an id.
/// </summary>
internal static class EventIds
{
    public const int Migrated = 3000;
    public const int InitialMapCreated = 3001;
    public const int StorageUnavailable = 3010;
    public const int UnexpectedError = 3011;
    public const int ListenerFailed = 3020;
    public const int ListenerConnected = 3021;
    public const int MapEpochObserved = 3022;
    public const int MapChanged = 3030;
    public const int UserErased = 3040;
    public const int EntryQuarantined = 3041;
    public const int ResidencyChangeRefused = 3042;
    public const int MoveMetricsReadFailed = 3050;
}
