namespace Geo.Contracts;

/// <summary>
/// Log event ids of Geo.Contracts (range 3100–3199). Every assembly has its own range, listed in docs/operations.md
/// ("Log event ids"), so no two messages in one process share an id.
/// </summary>
internal static class EventIds
{
    public const int FollowingShardMap = 3100;
    public const int ShardMapWatchFailed = 3101;
    public const int ShardMapWatchSilent = 3102;
    public const int ShardMapEpoch = 3103;
}
