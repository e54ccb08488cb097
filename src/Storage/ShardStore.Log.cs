using Geo.Core.Logging;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    // The store's log calls, with the shard's logger; the messages are in StorageLog. A user is named by its keyed hash.
    private void LogQuarantined(string origin, string userId, string shardId, string version) => _logger.RemoteChangeQuarantined(origin, UserLogName.Of(userId), shardId, version);

    private void LogConflict(string shardId, string userId, string winner, string loser) => _logger.ConflictRecorded(shardId, UserLogName.Of(userId), winner, loser);

    private void LogUserErased(string userId, string shardId, string version) => _logger.UserErased(UserLogName.Of(userId), shardId, version);

    private void LogEraseStepSkipped(string shardId, string step) => _logger.EraseStepSkipped(shardId, step);

    private void LogPruned(long count, long seq, string shardId) => _logger.ChangeLogPruned(count, seq, shardId);

    private void LogNotifyFailed(string shardId, string reason) => _logger.ChangeNotifyFailed(shardId, reason);
}
