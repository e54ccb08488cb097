using Geo.Core.Versioning;

namespace Geo.Storage;

/// <summary>
/// The preconditions of a document write (RFC 9110 §13.1): <c>If-Match</c> then <c>If-None-Match</c>, each absent,
/// <c>*</c> (any live document) or a set of versions. A set may be empty: an If-Match naming only versions this service
/// never issued matches nothing.
/// </summary>
public sealed record WriteCondition
{
    private WriteCondition(bool? matchAny, IReadOnlyList<DataVersion>? match, bool? noneMatchAny, IReadOnlyList<DataVersion>? noneMatch)
    {
        MatchAny = matchAny;
        Match = match;
        NoneMatchAny = noneMatchAny;
        NoneMatch = noneMatch;
    }

    private bool? MatchAny { get; }

    private IReadOnlyList<DataVersion>? Match { get; }

    private bool? NoneMatchAny { get; }

    private IReadOnlyList<DataVersion>? NoneMatch { get; }

    /// <summary>No precondition.</summary>
    public static WriteCondition None { get; } = new(null, null, null, null);

    /// <summary>This condition plus <c>If-Match: *</c>: a live document must exist.</summary>
    public WriteCondition WithIfMatchAny() => new(true, null, NoneMatchAny, NoneMatch);

    /// <summary>This condition plus <c>If-Match</c> with these versions: the live document must have one of them.</summary>
    public WriteCondition WithIfMatch(IEnumerable<DataVersion> versions) => new(null, [.. versions], NoneMatchAny, NoneMatch);

    /// <summary>This condition plus <c>If-None-Match: *</c>: no live document may exist (create only).</summary>
    public WriteCondition WithIfNoneMatchAny() => new(MatchAny, Match, true, null);

    /// <summary>This condition plus <c>If-None-Match</c> with these versions: the live document may have none of them.</summary>
    public WriteCondition WithIfNoneMatch(IEnumerable<DataVersion> versions) => new(MatchAny, Match, null, [.. versions]);

    /// <summary>True when nothing is asked.</summary>
    public bool IsNone => MatchAny is null && Match is null && NoneMatchAny is null && NoneMatch is null;

    /// <summary>Whether a write may proceed given the live document's version (null when there is none, or a tombstone).</summary>
    public bool IsSatisfiedBy(DataVersion? live)
    {
        if (MatchAny is true && live is null)
        {
            return false;
        }

        if (Match is { } match && (live is not { } l || !match.Contains(l)))
        {
            return false;
        }

        if (NoneMatchAny is true && live is not null)
        {
            return false;
        }

        return NoneMatch is not { } none || live is not { } v || !none.Contains(v);
    }

    /// <summary>The condition of callers that pass one expected version (or none).</summary>
    public static implicit operator WriteCondition?(DataVersion? ifMatch) => ifMatch is { } v ? None.WithIfMatch([v]) : null;

    /// <summary>The condition for one expected version.</summary>
    public static WriteCondition? FromDataVersion(DataVersion? ifMatch) => ifMatch;
}
