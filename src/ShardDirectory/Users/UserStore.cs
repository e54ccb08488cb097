using System.Data;
using Dapper;
using Geo.Contracts.Directory;
using Geo.Core.Clock;
using Geo.ShardDirectory.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Geo.ShardDirectory.Users;

/// <summary>One row of <c>directory_users</c>.</summary>
internal sealed record UserRow(string UserId, string Residency, string HomeRegion, long VersionHlc, string VersionOrigin, bool Deleted, long ChangeSeq)
{
    public UserEntry ToEntry() => new()
    {
        UserId = UserId,
        Residency = Residency,
        HomeRegion = HomeRegion,
        Version = new EntryVersion { Hlc = VersionHlc, Origin = VersionOrigin },
        Deleted = Deleted,
    };
}

/// <summary>An idempotency key of a user creation: the key, the hash of the request it came with, how long it is kept.</summary>
internal sealed record CreateKey(string Key, byte[] RequestHash, TimeSpan Ttl);

/// <summary>What <see cref="UserStore.CreateAsync"/> did.</summary>
internal enum CreateOutcome
{
    /// <summary>The entry was inserted.</summary>
    Created,

    /// <summary>An entry with this id already existed; nothing changed.</summary>
    Existed,

    /// <summary>The idempotency key was seen with the same request: the first create's entry is returned.</summary>
    Replayed,

    /// <summary>The idempotency key was seen with another request: nothing changed.</summary>
    KeyReused,
}

/// <summary>
/// Directory entries in the region's directory database. Every change takes one advisory lock until commit and
/// draws a new <c>change_seq</c>, so sequence order is commit order and a reader of <c>change_seq &gt; N</c> misses nothing.
/// Changed and created ids are announced with NOTIFY so every directory process drops them from its cache and wakes its
/// WatchUserChanges streams.
/// </summary>
internal sealed class UserStore(NpgsqlDataSource dataSource, HybridLogicalClock clock, DirectorySite site, TimeProvider time, IOptions<DirectoryOptions> options)
{
    public const string ChangeChannel = "geo_directory_user";

    // "geo_usr": serializes entry changes until commit.
    private const long ChangeLockKey = 0x6765_6F5F_7573_72;

    private const string Columns = """
        user_id AS UserId, residency AS Residency, home_region AS HomeRegion, version_hlc AS VersionHlc,
        version_origin AS VersionOrigin, deleted AS Deleted, change_seq AS ChangeSeq
        """;

    private const string LockSql = "SELECT pg_advisory_xact_lock(@ChangeLockKey)";

    private const string GetSql = $"SELECT {Columns} FROM directory_users WHERE user_id = @UserId";

    private const string InsertSql = $"""
        INSERT INTO directory_users (user_id, residency, home_region, version_hlc, version_origin, deleted, change_seq, updated_at)
        VALUES (@UserId, @Residency, @HomeRegion, @VersionHlc, @VersionOrigin, false, nextval('directory_user_change_seq'), @Now)
        ON CONFLICT (user_id) DO NOTHING
        RETURNING {Columns}
        """;

    private const string PruneKeysSql = """
        DELETE FROM directory_create_keys
        WHERE ctid IN (SELECT ctid FROM directory_create_keys WHERE expires_at <= @Now LIMIT 100)
        """;

    private const string GetKeySql = """
        SELECT user_id AS UserId, request_hash AS RequestHash FROM directory_create_keys
        WHERE idempotency_key = @Key AND expires_at > @Now
        """;

    private const string PutKeySql = """
        INSERT INTO directory_create_keys (idempotency_key, request_hash, user_id, created_at, expires_at)
        VALUES (@Key, @RequestHash, @UserId, @Now, @Expires)
        ON CONFLICT (idempotency_key) DO UPDATE
        SET request_hash = EXCLUDED.request_hash, user_id = EXCLUDED.user_id, created_at = EXCLUDED.created_at,
            expires_at = EXCLUDED.expires_at
        """;

    private const string EraseSql = $"""
        UPDATE directory_users
        SET deleted = true, version_hlc = @VersionHlc, version_origin = @VersionOrigin,
            change_seq = nextval('directory_user_change_seq'), updated_at = @Now
        WHERE user_id = @UserId
        RETURNING {Columns}
        """;

    // Last writer wins on (hlc, origin); origin compares bytewise (COLLATE "C"), as DataVersion does.
    private const string ApplySql = """
        INSERT INTO directory_users AS u (user_id, residency, home_region, version_hlc, version_origin, deleted, change_seq, updated_at)
        SELECT e.user_id, e.residency, e.home_region, e.version_hlc, e.version_origin, e.deleted, nextval('directory_user_change_seq'), @Now
        FROM unnest(@UserIds, @Residencies, @HomeRegions, @Hlcs, @Origins, @Deleted)
             AS e(user_id, residency, home_region, version_hlc, version_origin, deleted)
        ON CONFLICT (user_id) DO UPDATE
        SET residency = EXCLUDED.residency, home_region = EXCLUDED.home_region, version_hlc = EXCLUDED.version_hlc,
            version_origin = EXCLUDED.version_origin, deleted = EXCLUDED.deleted, change_seq = EXCLUDED.change_seq,
            updated_at = EXCLUDED.updated_at
        WHERE (u.version_hlc, u.version_origin) < (EXCLUDED.version_hlc, EXCLUDED.version_origin)
        RETURNING user_id
        """;

    private const string StoredResidencySql = "SELECT user_id AS UserId, residency AS Residency FROM directory_users WHERE user_id = ANY(@UserIds)";

    private const string NotifySql = $"SELECT pg_notify('{ChangeChannel}', id) FROM unnest(@Ids) AS t(id)";

    private const string ListSql = $"""
        SELECT {Columns} FROM directory_users
        WHERE user_id > @After AND (@IncludeErased OR NOT deleted)
        ORDER BY user_id
        LIMIT @Limit
        """;

    private const string ChangesSql = $"""
        SELECT {Columns} FROM directory_users
        WHERE change_seq > @After AND (@Origin = '' OR version_origin = @Origin)
        ORDER BY change_seq
        LIMIT @Limit
        """;

    private const string MaxSeqSql = "SELECT coalesce(max(change_seq), 0) FROM directory_users";

    private readonly int _timeoutSeconds = (int)Math.Ceiling(options.Value.CommandTimeout.TotalSeconds);

    public async Task<UserRow?> GetAsync(string userId, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<UserRow>(Command(GetSql, new { UserId = userId }, null, ct));
    }

    /// <summary>
    /// Inserts the entry with a fresh local version unless the id exists. With a <paramref name="key"/>, the key and
    /// the entry commit together: a later create with the same key and request hash returns the first user
    /// (<see cref="CreateOutcome.Replayed"/>), one with another hash gets <see cref="CreateOutcome.KeyReused"/>.
    /// Creates are serialized by the change lock, so a concurrent duplicate waits for the first and then replays it.
    /// </summary>
    public async Task<(UserRow? Row, CreateOutcome Outcome)> CreateAsync(string userId, string residency, string homeRegion, CreateKey? key, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(Command(LockSql, new { ChangeLockKey }, tx, ct));
        var now = time.GetUtcNow();
        if (key is not null)
        {
            await connection.ExecuteAsync(Command(PruneKeysSql, new { Now = now }, tx, ct));
            var earlier = await connection.QuerySingleOrDefaultAsync<(string UserId, byte[] RequestHash)?>(
                Command(GetKeySql, new { Key = key.Key, Now = now }, tx, ct));
            if (earlier is { } first)
            {
                if (!first.RequestHash.AsSpan().SequenceEqual(key.RequestHash))
                {
                    return (null, CreateOutcome.KeyReused);
                }

                var replayed = await connection.QuerySingleAsync<UserRow>(Command(GetSql, new { first.UserId }, tx, ct));
                await tx.CommitAsync(ct);
                return (replayed, CreateOutcome.Replayed);
            }
        }

        var created = await connection.QuerySingleOrDefaultAsync<UserRow>(Command(InsertSql, new
        {
            UserId = userId,
            Residency = residency,
            HomeRegion = homeRegion,
            VersionHlc = clock.Now().Value,
            VersionOrigin = site.RegionId,
            Now = now,
        }, tx, ct));
        if (created is not null && key is not null)
        {
            await connection.ExecuteAsync(Command(PutKeySql, new { Key = key.Key, key.RequestHash, UserId = userId, Now = now, Expires = now + key.Ttl }, tx, ct));
        }

        if (created is not null)
        {
            // Announced like every other change: every directory process's watchers (the region's replicator) learn of
            // the new entry at once.
            await connection.ExecuteAsync(Command(NotifySql, new { Ids = new[] { userId } }, tx, ct));
        }

        var row = created ?? await connection.QuerySingleAsync<UserRow>(Command(GetSql, new { UserId = userId }, tx, ct));
        await tx.CommitAsync(ct);
        return (row, created is not null ? CreateOutcome.Created : CreateOutcome.Existed);
    }

    /// <summary>Tombstones the entry with a version greater than its current one; null when unknown.</summary>
    public async Task<(UserRow Row, bool Erased)?> EraseAsync(string userId, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(Command(LockSql, new { ChangeLockKey }, tx, ct));
        var current = await connection.QuerySingleOrDefaultAsync<UserRow>(Command(GetSql + " FOR UPDATE", new { UserId = userId }, tx, ct));
        if (current is null || current.Deleted)
        {
            return current is null ? null : (current, false);
        }

        // The tombstone must outrank the entry even when the entry's clock ran ahead of ours.
        var hlc = Math.Max(clock.Now().Value, current.VersionHlc + 1);
        var erased = await connection.QuerySingleAsync<UserRow>(Command(EraseSql, new
        {
            UserId = userId,
            VersionHlc = hlc,
            VersionOrigin = site.RegionId,
            Now = time.GetUtcNow(),
        }, tx, ct));
        await connection.ExecuteAsync(Command(NotifySql, new { Ids = new[] { userId } }, tx, ct));
        await tx.CommitAsync(ct);
        return (erased, true);
    }

    /// <summary>
    /// Stores each entry whose version is greater than the stored one, unless it would change the user's residency
    /// (fixed at creation: such an entry is refused whatever its version). Returns the ids stored and the stored
    /// residency of every id of the batch the directory already held.
    /// </summary>
    /// <remarks>Within one batch only the greatest version of an id competes; callers pass distinct ids.</remarks>
    public async Task<(IReadOnlySet<string> Applied, IReadOnlyDictionary<string, string> StoredResidency)> ApplyAsync(IReadOnlyList<UserEntry> entries, CancellationToken ct)
    {
        if (entries.Count == 0)
        {
            return (new HashSet<string>(), new Dictionary<string, string>());
        }

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(Command(LockSql, new { ChangeLockKey }, tx, ct));
        // Under the change lock, so no create or apply can set a residency between this read and the upsert.
        var stored = (await connection.QueryAsync<(string UserId, string Residency)>(Command(StoredResidencySql, new { UserIds = entries.Select(e => e.UserId).ToArray() }, tx, ct)))
            .ToDictionary(r => r.UserId, r => r.Residency, StringComparer.Ordinal);
        entries = [.. entries.Where(e => !stored.TryGetValue(e.UserId, out var residency) || residency == e.Residency)];
        if (entries.Count == 0)
        {
            await tx.CommitAsync(ct);
            return (new HashSet<string>(), stored);
        }

        var applied = (await connection.QueryAsync<string>(Command(ApplySql, new
        {
            UserIds = entries.Select(e => e.UserId).ToArray(),
            Residencies = entries.Select(e => e.Residency).ToArray(),
            HomeRegions = entries.Select(e => e.HomeRegion).ToArray(),
            Hlcs = entries.Select(e => e.Version.Hlc).ToArray(),
            Origins = entries.Select(e => e.Version.Origin).ToArray(),
            Deleted = entries.Select(e => e.Deleted).ToArray(),
            Now = time.GetUtcNow(),
        }, tx, ct))).ToArray();
        if (applied.Length > 0)
        {
            await connection.ExecuteAsync(Command(NotifySql, new { Ids = applied }, tx, ct));
        }

        await tx.CommitAsync(ct);
        return (applied.ToHashSet(StringComparer.Ordinal), stored);
    }

    public async Task<IReadOnlyList<UserRow>> ListAsync(string after, int limit, bool includeErased, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        return [.. await connection.QueryAsync<UserRow>(Command(ListSql, new { After = after, Limit = limit, IncludeErased = includeErased }, null, ct))];
    }

    /// <summary>Entries changed after <paramref name="after"/>, and the sequence to resume from (past the ones the filter skipped).</summary>
    public async Task<(IReadOnlyList<UserRow> Rows, long Next)> ReadChangesAsync(long after, int limit, string origin, CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
        var rows = (await connection.QueryAsync<UserRow>(Command(ChangesSql, new { After = after, Limit = limit, Origin = origin }, tx, ct))).ToArray();

        // A short page scanned everything this snapshot holds; a full one resumes after its last row.
        var next = rows.Length == limit
            ? rows[^1].ChangeSeq
            : Math.Max(after, await connection.ExecuteScalarAsync<long>(Command(MaxSeqSql, null, tx, ct)));
        await tx.CommitAsync(ct);
        return (rows, next);
    }

    /// <summary>The highest change sequence now (a reader that starts "from now" continues after it).</summary>
    public async Task<long> MaxSeqAsync(CancellationToken ct)
    {
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        return await connection.ExecuteScalarAsync<long>(Command(MaxSeqSql, null, null, ct));
    }

    private CommandDefinition Command(string sql, object? parameters, NpgsqlTransaction? tx, CancellationToken ct)
        => new(sql, parameters, tx, _timeoutSeconds, cancellationToken: ct);
}
