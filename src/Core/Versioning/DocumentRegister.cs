namespace Geo.Core.Versioning;

/// <summary>
/// A document as a last-writer-wins register: the state with the larger <see cref="DataVersion"/> wins;
/// a delete is a tombstone that carries its own version, so it competes like any write.
/// </summary>
/// <param name="Version">Version of the write that produced this state.</param>
/// <param name="Deleted">True for a tombstone.</param>
/// <param name="Body">JSON text; null for a tombstone.</param>
public sealed record DocumentRegister(DataVersion Version, bool Deleted, string? Body)
{
    /// <summary>Merge: commutative, associative and idempotent because versions are totally ordered and unique per write.</summary>
    public static DocumentRegister? Merge(DocumentRegister? a, DocumentRegister? b)
    {
        if (a is null)
        {
            return b;
        }

        if (b is null)
        {
            return a;
        }

        return b.Version > a.Version ? b : a;
    }

    /// <summary>True when <paramref name="incoming"/> should replace <paramref name="stored"/> (strictly newer).</summary>
    public static bool Supersedes(DocumentRegister incoming, DocumentRegister? stored)
    {
        ArgumentNullException.ThrowIfNull(incoming);
        return stored is null || incoming.Version > stored.Version;
    }
}
