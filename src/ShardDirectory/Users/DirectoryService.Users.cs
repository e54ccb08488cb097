using Geo.Core.Logging;
using Geo.Core.Tls;
using Geo.ServiceDefaults.Tls;
using Geo.Contracts.Directory;
using Geo.Core.Clock;
using Geo.Core.Versioning;
using Geo.ShardDirectory.Users;
using Grpc.Core;

namespace Geo.ShardDirectory.Grpc;

internal sealed partial class DirectoryService
{
    private const int DefaultPageSize = 100;
    private const int MaxPageSize = 1000;

    [PeerRole(PeerRoles.Api, Region = PeerRegion.Local)]
    public override async Task<UserEntry> CreateUser(CreateUserRequest request, ServerCallContext context)
    {
        UserRules.RequireUserId(request.UserId);
        UserRules.RequirePlacement(site.Topology, request.Residency, request.HomeRegion);
        var key = UserRules.CreateKey(request);
        var (row, outcome) = await users.CreateAsync(request.UserId, request.Residency, request.HomeRegion, key, context.CancellationToken);
        switch (outcome)
        {
            case CreateOutcome.KeyReused:
                RpcErrors.FailedPrecondition(UserRules.IdempotencyKeyReused);
                break;
            case CreateOutcome.Existed when row!.Deleted || row.Residency != request.Residency || row.HomeRegion != request.HomeRegion:
                RpcErrors.AlreadyExists(row.Deleted
                    ? $"user '{request.UserId}' was erased; erased ids are never reused, generate a new one."
                    : $"user '{request.UserId}' exists with residency '{row.Residency}' and home region '{row.HomeRegion}'; generate a new id.");
                break;
        }

        var entry = row!.ToEntry();
        entry.Replayed = outcome == CreateOutcome.Replayed;
        return entry;
    }

    public override async Task<UserEntry> GetUser(GetUserRequest request, ServerCallContext context)
    {
        UserRules.RequireUserId(request.UserId);
        if (request.IncludeErased)
        {
            return (await users.GetAsync(request.UserId, context.CancellationToken))?.ToEntry()
                ?? throw new RpcException(new Status(StatusCode.NotFound, $"user '{request.UserId}' is unknown."));
        }

        if (cache.TryGet(request.UserId, out var cached))
        {
            return cached;
        }

        var generation = cache.Generation;
        var row = await users.GetAsync(request.UserId, context.CancellationToken);
        if (row is null || row.Deleted)
        {
            RpcErrors.NotFound($"user '{request.UserId}' is unknown or erased.");
        }

        var entry = row.ToEntry();
        cache.Set(entry, generation);
        return entry;
    }

    [PeerRole(PeerRoles.Admin)]
    public override async Task<ListUsersResponse> ListUsers(ListUsersRequest request, ServerCallContext context)
    {
        var size = PageSize(request.PageSize, "page_size");
        var rows = await users.ListAsync(request.PageToken, size + 1, request.IncludeErased, context.CancellationToken);
        var response = new ListUsersResponse();
        response.Users.Add(rows.Take(size).Select(r => r.ToEntry()));
        response.NextPageToken = rows.Count > size ? rows[size - 1].UserId : string.Empty;
        return response;
    }

    [PeerRole(PeerRoles.Api, Region = PeerRegion.Local)]
    public override async Task<UserEntry> EraseUser(EraseUserRequest request, ServerCallContext context)
    {
        UserRules.RequireUserId(request.UserId);
        var result = await users.EraseAsync(request.UserId, context.CancellationToken);
        if (result is null)
        {
            RpcErrors.NotFound($"user '{request.UserId}' is unknown.");
        }

        cache.Invalidate(request.UserId);
        if (result.Value.Erased)
        {
            LogUserErased(logger, UserLogName.Of(request.UserId));
        }

        return result.Value.Row.ToEntry();
    }

    [PeerRole(PeerRoles.Replicator, Region = PeerRegion.Local)]
    public override async Task<ApplyUserEntriesResponse> ApplyUserEntries(ApplyUserEntriesRequest request, ServerCallContext context)
    {
        if (request.Entries.Count > MaxPageSize)
        {
            RpcErrors.InvalidArgument($"entries: {request.Entries.Count} entries; send at most {MaxPageSize} per call.");
        }

        for (var i = 0; i < request.Entries.Count; i++)
        {
            UserRules.RequireReplicable(site.Topology, request.Entries[i], i);
        }

        // Entries too far in the future are quarantined; of several entries for one id, only the greatest competes.
        var response = new ApplyUserEntriesResponse { ProtocolVersion = Contracts.ProtocolVersions.Directory };
        var candidates = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < request.Entries.Count; i++)
        {
            var entry = request.Entries[i];
            if (!clock.TryObserve(new HlcTimestamp(entry.Version.Hlc)))
            {
                response.Quarantined.Add(i);
                LogEntryQuarantined(logger, UserLogName.Of(entry.UserId), entry.Version.Origin, entry.Version.Hlc);
                continue;
            }

            if (!candidates.TryGetValue(entry.UserId, out var best) || Version(entry.Version) > Version(request.Entries[best].Version))
            {
                candidates[entry.UserId] = i;
            }
        }

        var (applied, stored) = await users.ApplyAsync([.. candidates.Values.Select(i => request.Entries[i])], context.CancellationToken);
        foreach (var id in applied)
        {
            cache.Invalidate(id);
        }

        for (var i = 0; i < request.Entries.Count; i++)
        {
            var entry = request.Entries[i];
            response.Applied.Add(candidates.TryGetValue(entry.UserId, out var winner) && winner == i && applied.Contains(entry.UserId));
            if (stored.TryGetValue(entry.UserId, out var residency) && residency != entry.Residency && !response.Quarantined.Contains(i))
            {
                // A residency is fixed at creation: an entry changing it would ship the user's data out of its jurisdiction.
                response.Refused.Add(i);
                entryMetrics.ResidencyChangeRefused();
                LogResidencyChangeRefused(logger, UserLogName.Of(entry.UserId), residency, entry.Residency, entry.Version.Origin);
            }
        }

        return response;
    }

    [PeerRole(PeerRoles.Replicator, Region = PeerRegion.Local)]
    public override async Task<ReadUserChangesResponse> ReadUserChanges(ReadUserChangesRequest request, ServerCallContext context)
    {
        if (request.AfterSeq < 0)
        {
            RpcErrors.InvalidArgument($"after_seq: {request.AfterSeq} is negative; pass 0 or the previous next_after_seq.");
        }

        var limit = PageSize(request.Limit, "limit");
        var (rows, next) = await users.ReadChangesAsync(request.AfterSeq, limit, request.Origin, context.CancellationToken);
        var response = new ReadUserChangesResponse { NextAfterSeq = next, ProtocolVersion = Contracts.ProtocolVersions.Directory };
        response.Changes.Add(rows.Select(r => new UserChange { Seq = r.ChangeSeq, Entry = r.ToEntry() }));
        return response;
    }

    [PeerRole(PeerRoles.Replicator, Region = PeerRegion.Local)]
    public override async Task WatchUserChanges(WatchUserChangesRequest request, IServerStreamWriter<UserChangesEvent> responseStream, ServerCallContext context)
    {
        // One pending wake-up: pulses that arrive while one is being written coalesce into the next.
        var wake = new Core.Signals.Wakeup();
        using var subscription = cache.Changed.Subscribe(wake.Set);
        var heartbeat = options.Value.HeartbeatInterval;
        // Like WatchShardMap: the stream ends when the host is about to stop listening, so shutdown does not wait for it.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, shutdown.Stopping);
        var ct = linked.Token;
        try
        {
            await responseStream.WriteAsync(new UserChangesEvent { Changed = new UserChangesPulse() }, ct); // whatever changed before the watch
            while (true)
            {
                var changed = await wake.WaitAsync(heartbeat, time, ct);
                await responseStream.WriteAsync(changed
                    ? new UserChangesEvent { Changed = new UserChangesPulse() }
                    : new UserChangesEvent { Heartbeat = new Heartbeat { IntervalMs = (int)heartbeat.TotalMilliseconds, ServerTimeUnixMs = time.GetUtcNow().ToUnixTimeMilliseconds() } }, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The watcher left or the host is stopping.
        }
    }

    [PeerRole(PeerRoles.Api, Region = PeerRegion.Local)]
    public override async Task<ReadErasuresResponse> ReadErasures(ReadErasuresRequest request, ServerCallContext context)
    {
        var limit = PageSize(request.Limit, "limit");
        if (request.AfterSeq < 0)
        {
            return new ReadErasuresResponse { NextAfterSeq = await users.MaxSeqAsync(context.CancellationToken) };
        }

        var (rows, next) = await users.ReadChangesAsync(request.AfterSeq, limit, string.Empty, context.CancellationToken);
        var response = new ReadErasuresResponse { NextAfterSeq = next };
        response.UserIds.Add(rows.Where(r => r.Deleted).Select(r => r.UserId));
        return response;
    }

    private static int PageSize(int requested, string field)
    {
        if (requested is < 0 or > MaxPageSize)
        {
            RpcErrors.InvalidArgument($"{field}: {requested} is out of range; use 1 to {MaxPageSize} (0 means {DefaultPageSize}).");
        }

        return requested == 0 ? DefaultPageSize : requested;
    }

    private static DataVersion Version(EntryVersion version) => new(new HlcTimestamp(version.Hlc), version.Origin);

    [LoggerMessage(EventId = EventIds.UserErased, Level = LogLevel.Information, Message = "Erased directory entry of {User}")]
    private static partial void LogUserErased(ILogger logger, string user);

    [LoggerMessage(EventId = EventIds.EntryQuarantined, Level = LogLevel.Warning, Message = "Quarantined the entry of {User} from {OriginRegion}: hlc {Hlc} is beyond the clock-skew bound")]
    private static partial void LogEntryQuarantined(ILogger logger, string user, string originRegion, long hlc);

    [LoggerMessage(EventId = EventIds.ResidencyChangeRefused, Level = LogLevel.Warning, Message = "Refused a directory entry for user {User} from {OriginRegion}: it would change the residency from {Stored} to {Sent}")]
    private static partial void LogResidencyChangeRefused(ILogger logger, string user, string stored, string sent, string originRegion);
}
