using Dapper;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;

namespace Geo.Storage;

public sealed partial class ShardStore
{
    private const string SelectDocumentForUpdateSql = """
        SELECT body::text AS Body, deleted AS Deleted, version_hlc AS VersionHlc, version_origin AS VersionOrigin,
               prev_version_hlc AS PrevHlc, prev_version_origin AS PrevOrigin
        FROM documents WHERE user_id = @UserId AND collection = @Collection AND key = @Key
        FOR UPDATE
        """;

    private const string InsertDocumentSql = """
        INSERT INTO documents (user_id, collection, key, bucket, body, deleted, version_hlc, version_origin, prev_version_hlc, prev_version_origin, updated_at)
        VALUES (@UserId, @Collection, @Key, @Bucket, @Body::jsonb, @Deleted, @VersionHlc, @VersionOrigin, @PrevHlc, @PrevOrigin, @Now)
        ON CONFLICT (user_id, collection, key) DO NOTHING
        """;

    private const string UpdateDocumentSql = """
        UPDATE documents SET body = @Body::jsonb, deleted = @Deleted, version_hlc = @VersionHlc, version_origin = @VersionOrigin,
                             prev_version_hlc = @PrevHlc, prev_version_origin = @PrevOrigin, updated_at = @Now
        WHERE user_id = @UserId AND collection = @Collection AND key = @Key
        """;

    private const string GetDocumentSql = """
        SELECT collection AS Collection, key AS Key, body::text AS Body, version_hlc AS VersionHlc, version_origin AS VersionOrigin
        FROM documents WHERE user_id = @UserId AND collection = @Collection AND key = @Key AND NOT deleted
        """;

    // Keyset page, then a byte budget over the page in key order: a row is kept while the bodies up to it fit, and the
    // first row always (one document is at most the body limit). Fetched tells whether the budget cut the page short.
    private const string ListDocumentsSql = """
        SELECT Collection, Key, Body, VersionHlc, VersionOrigin, Fetched FROM (
            SELECT limited.*, sum(octet_length(Body)) OVER (ORDER BY Key COLLATE "C") AS Running, count(*) OVER () AS Fetched
            FROM (
                SELECT collection AS Collection, key AS Key, body::text AS Body, version_hlc AS VersionHlc, version_origin AS VersionOrigin
                FROM documents
                WHERE user_id = @UserId AND collection = @Collection AND NOT deleted AND (@After::text IS NULL OR key > @After::text)
                ORDER BY key
                LIMIT @Take
            ) limited
        ) measured
        WHERE Running <= @MaxBytes OR Running = octet_length(Body)
        ORDER BY Key COLLATE "C"
        """;

    /// <summary>Creates or replaces a document.</summary>
    /// <param name="userId">Owner.</param>
    /// <param name="collection">Collection name.</param>
    /// <param name="key">Document key.</param>
    /// <param name="jsonBody">The body as JSON text (validated by PostgreSQL as jsonb).</param>
    /// <param name="ifMatch">When set, write only if the live document satisfies it (a <see cref="DataVersion"/> converts: exactly this version).</param>
    /// <param name="idempotency">When set, the response is stored with the write, atomically.</param>
    /// <param name="ct">Cancellation.</param>
    public Task<DocumentWriteResult> PutDocumentAsync(string userId, string collection, string key, string jsonBody, WriteCondition? ifMatch = null,
        IdempotencyContext<DocumentWriteResult>? idempotency = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(jsonBody);
        return WriteDocumentAsync(userId, collection, key, jsonBody, ifMatch, idempotency, ct);
    }

    /// <summary>Deletes a document by writing a versioned tombstone (written even when no live document exists, so older replicated writes lose).</summary>
    /// <inheritdoc cref="PutDocumentAsync" path="/param"/>
    public Task<DocumentWriteResult> DeleteDocumentAsync(string userId, string collection, string key, WriteCondition? ifMatch = null,
        IdempotencyContext<DocumentWriteResult>? idempotency = null, CancellationToken ct = default) =>
        WriteDocumentAsync(userId, collection, key, body: null, ifMatch, idempotency, ct);

    /// <summary>The live document, or null when absent or deleted.</summary>
    public async Task<StoredDocument?> GetDocumentAsync(string userId, string collection, string key, CancellationToken ct = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<DocumentRow>(new CommandDefinition(GetDocumentSql, new { UserId = userId, Collection = collection, Key = key }, cancellationToken: ct));
        return row?.ToDocument();
    }

    /// <summary>Live documents of a collection in ordinal key order, <paramref name="limit"/> at a time (keyset paging).</summary>
    /// <param name="userId">Owner.</param>
    /// <param name="collection">Collection name.</param>
    /// <param name="limit">Page size, 1 or more.</param>
    /// <param name="after">The previous page's <see cref="DocumentPage.Next"/>; null for the first page.</param>
    /// <param name="ct">Cancellation.</param>
    public Task<DocumentPage> ListDocumentsAsync(string userId, string collection, int limit, string? after = null, CancellationToken ct = default)
        => ListDocumentsAsync(userId, collection, limit, after, long.MaxValue, ct);

    /// <summary>
    /// Like <see cref="ListDocumentsAsync(string, string, int, string?, CancellationToken)"/>, and the page also ends
    /// early, with <see cref="DocumentPage.Next"/> set, once its bodies would exceed <paramref name="maxBytes"/> (a page
    /// always holds at least one document).
    /// </summary>
    public async Task<DocumentPage> ListDocumentsAsync(string userId, string collection, int limit, string? after, long maxBytes, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        var rows = (await connection.QueryAsync<ListedRow>(new CommandDefinition(ListDocumentsSql,
            new { UserId = userId, Collection = collection, After = after, Take = limit + 1, MaxBytes = maxBytes }, cancellationToken: ct))).ToList();
        var items = rows.Take(limit).Select(row => row.ToDocument()).ToList();
        var more = rows.Count > limit || (rows.Count > 0 && rows[0].Fetched > rows.Count);
        return new DocumentPage(items, more ? items[^1].Key : null);
    }

    private async Task<DocumentWriteResult> WriteDocumentAsync(string userId, string collection, string key, string? body, WriteCondition? ifMatch,
        IdempotencyContext<DocumentWriteResult>? idempotency, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(userId);
        ArgumentException.ThrowIfNullOrEmpty(collection);
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (ifMatch is null && idempotency is null && await TryFastWriteDocumentAsync(userId, collection, key, body, ct) is { } fast)
        {
            SignalCommitted(); // The batch's implicit transaction committed when its reader closed.
            return fast; // The common case: one round trip (ShardStore.FastWrite.cs).
        }

        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await LockUserAsync(connection, tx, userId, exclusive: false, ct);
        await RequireNotErasedAsync(connection, tx, userId, ct);
        var bucket = Buckets.Of(userId);
        while (true)
        {
            var current = await connection.QuerySingleOrDefaultAsync<LockedDocumentRow>(new CommandDefinition(SelectDocumentForUpdateSql,
                new { UserId = userId, Collection = collection, Key = key }, tx, cancellationToken: ct));
            var live = current is { Deleted: false } ? current.Version : (DataVersion?)null;
            if (ifMatch is { } condition && !condition.IsSatisfiedBy(live))
            {
                var failed = new DocumentWriteResult(DocumentWriteOutcome.PreconditionFailed, live);
                await CompleteIdempotencyAsync(connection, tx, userId, idempotency, failed, ct);
                await tx.CommitAsync(ct);
                return failed;
            }

            var version = NextVersion(current?.Version);
            var row = new
            {
                UserId = userId,
                Collection = collection,
                Key = key,
                Bucket = bucket,
                Body = body,
                Deleted = body is null,
                VersionHlc = version.Hlc.Value,
                VersionOrigin = version.Origin,
                PrevHlc = current?.VersionHlc,
                PrevOrigin = current?.VersionOrigin,
                Now = _time.GetUtcNow(),
            };
            var written = await connection.ExecuteAsync(new CommandDefinition(current is null ? InsertDocumentSql : UpdateDocumentSql, row, tx, cancellationToken: ct));
            if (written == 0)
            {
                continue; // A concurrent writer inserted the key first; lock its row and decide again.
            }

            await AppendChangesAsync(connection, tx, [LocalChange(ChangeKind.Document, userId, version) with
            {
                Collection = collection,
                Key = key,
                Body = body,
                Deleted = body is null,
                PreviousVersion = current?.Version,
            }], ct);
            var outcome = (body, live) switch
            {
                (not null, null) => DocumentWriteOutcome.Created,
                (not null, _) => DocumentWriteOutcome.Replaced,
                (null, null) => DocumentWriteOutcome.NotFound,
                (null, _) => DocumentWriteOutcome.Deleted,
            };
            var result = new DocumentWriteResult(outcome, version, current?.Version);
            await CompleteIdempotencyAsync(connection, tx, userId, idempotency, result, ct);
            await tx.CommitAsync(ct);
            SignalCommitted();
            return result;
        }
    }

    private sealed record DocumentRow(string Collection, string Key, string Body, long VersionHlc, string VersionOrigin)
    {
        public StoredDocument ToDocument() => new(Collection, Key, Body, new DataVersion(new HlcTimestamp(VersionHlc), VersionOrigin));
    }

    private sealed record ListedRow(string Collection, string Key, string Body, long VersionHlc, string VersionOrigin, long Fetched)
    {
        public StoredDocument ToDocument() => new(Collection, Key, Body, new DataVersion(new HlcTimestamp(VersionHlc), VersionOrigin));
    }

    /// <summary>A document row locked for a write: body (null for a tombstone), version and the version it replaced.</summary>
    private sealed record LockedDocumentRow(string? Body, bool Deleted, long VersionHlc, string VersionOrigin, long? PrevHlc, string? PrevOrigin)
    {
        public DataVersion Version => new(new HlcTimestamp(VersionHlc), VersionOrigin);

        public DataVersion? Previous => PrevHlc is { } hlc ? new DataVersion(new HlcTimestamp(hlc), PrevOrigin ?? string.Empty) : null;
    }
}
