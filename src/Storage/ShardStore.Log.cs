using Microsoft.Extensions.Logging;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    [LoggerMessage(EventId = EventIds.RemoteChangeQuarantined, Level = LogLevel.Warning,
        Message = "Quarantined a change from {Origin} for user {UserId} on shard {ShardId}: version {Version} is beyond the clock skew bound")]
    private partial void LogQuarantined(string origin, string userId, string shardId, string version);

    [LoggerMessage(EventId = EventIds.ConflictRecorded, Level = LogLevel.Information,
        Message = "Conflict on shard {ShardId} for user {UserId}: {Winner} won over {Loser}")]
    private partial void LogConflict(string shardId, string userId, string winner, string loser);

    [LoggerMessage(EventId = EventIds.UserErased, Level = LogLevel.Information, Message = "Erased user {UserId} on shard {ShardId} at {Version}")]
    private partial void LogUserErased(string userId, string shardId, string version);

    [LoggerMessage(EventId = EventIds.ChangeLogPruned, Level = LogLevel.Debug, Message = "Pruned {Count} change-log entries up to {Seq} on shard {ShardId}")]
    private partial void LogPruned(long count, long seq, string shardId);

    [LoggerMessage(EventId = EventIds.ChangeNotifyFailed, Level = LogLevel.Warning, Message = "Change notification on shard {ShardId} failed: {Reason}; senders fall back to polling")]
    private partial void LogNotifyFailed(string shardId, string reason);
}
