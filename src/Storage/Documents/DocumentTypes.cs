using Geo.Core.Versioning;

namespace Geo.Storage;

/// <summary>A live document.</summary>
/// <param name="Collection">Collection name.</param>
/// <param name="Key">Document key.</param>
/// <param name="Body">The JSON body as text (as PostgreSQL's jsonb renders it).</param>
/// <param name="Version">Current version; its <see cref="DataVersion.ToETag"/> is the ETag.</param>
public sealed record StoredDocument(string Collection, string Key, string Body, DataVersion Version);

/// <summary>One page of a collection, in key order (ordinal).</summary>
/// <param name="Items">The documents of this page.</param>
/// <param name="Next">The key to pass as <c>after</c> for the next page; null on the last page.</param>
public sealed record DocumentPage(IReadOnlyList<StoredDocument> Items, string? Next);

/// <summary>What a document write did.</summary>
public enum DocumentWriteOutcome
{
    /// <summary>Put of a key that had no live document (HTTP 201).</summary>
    Created,

    /// <summary>Put over a live document (HTTP 200).</summary>
    Replaced,

    /// <summary>Delete of a live document (HTTP 204).</summary>
    Deleted,

    /// <summary>Delete of a key without a live document; a tombstone was still written so older replicated writes lose (HTTP 404).</summary>
    NotFound,

    /// <summary>If-Match did not match the live document; nothing changed (HTTP 412).</summary>
    PreconditionFailed,
}

/// <summary>The result of a document put or delete.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="Version">The new version; for <see cref="DocumentWriteOutcome.PreconditionFailed"/> the current live version, or null when none.</param>
/// <param name="Replaced">The stored version (live or tombstone) this write replaced, null when the key had none or nothing was written: the writer has seen it, so it is not a concurrent loser.</param>
public sealed record DocumentWriteResult(DocumentWriteOutcome Outcome, DataVersion? Version, DataVersion? Replaced = null);
