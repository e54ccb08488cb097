using Microsoft.Extensions.Logging;

namespace Geo.Storage;

/// <summary>
/// Every log message of Geo.Storage, with its id from <see cref="EventIds"/>. Users are named by their keyed hash
/// (<c>UserLogName</c>), never by id (docs/security.md): callers pass the hash.
/// </summary>
internal static partial class StorageLog
{
    [LoggerMessage(EventId = EventIds.MigrationApplied, Level = LogLevel.Information, Message = "Applied {Schema} migration {MigrationId} to {Database}")]
    public static partial void MigrationApplied(this ILogger logger, string migrationId, string schema, string database);

    [LoggerMessage(EventId = EventIds.MigrationsUpToDate, Level = LogLevel.Debug, Message = "The {Schema} schema of {Database} is up to date")]
    public static partial void MigrationsUpToDate(this ILogger logger, string schema, string database);

    [LoggerMessage(EventId = EventIds.RemoteChangeQuarantined, Level = LogLevel.Warning,
        Message = "Quarantined a change from {Origin} for user {User} on shard {ShardId}: version {Version} is beyond the clock skew bound")]
    public static partial void RemoteChangeQuarantined(this ILogger logger, string origin, string user, string shardId, string version);

    [LoggerMessage(EventId = EventIds.ConflictRecorded, Level = LogLevel.Information,
        Message = "Conflict on shard {ShardId} for user {User}: {Winner} won over {Loser}")]
    public static partial void ConflictRecorded(this ILogger logger, string shardId, string user, string winner, string loser);

    [LoggerMessage(EventId = EventIds.UserErased, Level = LogLevel.Information, Message = "Erased user {User} on shard {ShardId} at {Version}")]
    public static partial void UserErased(this ILogger logger, string user, string shardId, string version);

    [LoggerMessage(EventId = EventIds.EraseStepSkipped, Level = LogLevel.Warning, Message = "Erase on shard {ShardId} skipped step {Step}: a test-only switch is set")]
    public static partial void EraseStepSkipped(this ILogger logger, string shardId, string step);

    [LoggerMessage(EventId = EventIds.ChangeLogPruned, Level = LogLevel.Debug, Message = "Pruned {Count} change-log entries up to {Seq} on shard {ShardId}")]
    public static partial void ChangeLogPruned(this ILogger logger, long count, long seq, string shardId);

    [LoggerMessage(EventId = EventIds.ChangeNotifyFailed, Level = LogLevel.Warning, Message = "Change notification on shard {ShardId} failed: {Reason}; senders fall back to polling")]
    public static partial void ChangeNotifyFailed(this ILogger logger, string shardId, string reason);

    [LoggerMessage(EventId = EventIds.CacheUnavailable, Level = LogLevel.Warning, Message = "Redis unavailable, serving from Postgres ({ExceptionType}: {Reason})")]
    public static partial void CacheUnavailable(this ILogger logger, string exceptionType, string reason);
}
