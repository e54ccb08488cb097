using Geo.Core.Logging;
using Microsoft.Extensions.Logging;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    // Users are named by their keyed hash (UserLogName), never by id (docs/security.md).
    private void LogQuarantined(string origin, string userId, string shardId, string version) => LogQuarantinedCore(origin, UserLogName.Of(userId), shardId, version);

    private void LogConflict(string shardId, string userId, string winner, string loser) => LogConflictCore(shardId, UserLogName.Of(userId), winner, loser);

    private void LogUserErased(string userId, string shardId, string version) => LogUserErasedCore(UserLogName.Of(userId), shardId, version);

    [LoggerMessage(EventId = EventIds.RemoteChangeQuarantined, Level = LogLevel.Warning,
        Message = "Quarantined a change from {Origin} for user {User} on shard {ShardId}: version {Version} is beyond the clock skew bound")]
    private partial void LogQuarantinedCore(string origin, string user, string shardId, string version);

    [LoggerMessage(EventId = EventIds.ConflictRecorded, Level = LogLevel.Information,
        Message = "Conflict on shard {ShardId} for user {User}: {Winner} won over {Loser}")]
    private partial void LogConflictCore(string shardId, string user, string winner, string loser);

    [LoggerMessage(EventId = EventIds.UserErased, Level = LogLevel.Information, Message = "Erased user {User} on shard {ShardId} at {Version}")]
    private partial void LogUserErasedCore(string user, string shardId, string version);

    [LoggerMessage(EventId = EventIds.EraseStepSkipped, Level = LogLevel.Warning, Message = "Erase on shard {ShardId} skipped step {Step}: a test-only switch is set")]
    private partial void LogEraseStepSkipped(string shardId, string step);

    [LoggerMessage(EventId = EventIds.ChangeLogPruned, Level = LogLevel.Debug, Message = "Pruned {Count} change-log entries up to {Seq} on shard {ShardId}")]
    private partial void LogPruned(long count, long seq, string shardId);

    [LoggerMessage(EventId = EventIds.ChangeNotifyFailed, Level = LogLevel.Warning, Message = "Change notification on shard {ShardId} failed: {Reason}; senders fall back to polling")]
    private partial void LogNotifyFailed(string shardId, string reason);
}
