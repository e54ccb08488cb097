namespace Geo.Contracts;

/// <summary>
/// Versions of the wire protocols between regions and services (docs/operations.md "Upgrades"). A binary speaks its
/// own version and every version down to the minimum; a peer's version 0 means a binary from before versions were
/// carried, which speaks version 1. A rollout keeps every pair of running binaries within each other's window, so
/// only one version step is in flight at a time.
/// </summary>
public static class ProtocolVersions
{
    /// <summary>Replication stream: 1 = document, counter and user-erase changes, unversioned; 2 = versions and kinds
    /// on heartbeats, unknown kinds held and never acknowledged (Ack.unsupported).</summary>
    public const int Replication = 2;

    /// <summary>The oldest replication version this binary still speaks.</summary>
    public const int MinimumReplication = 1;

    /// <summary>Directory calls (ApplyUserEntries, ReadUserChanges): 2 = versions carried.</summary>
    public const int Directory = 2;

    /// <summary>The version a peer speaks, given what it sent (0: from before versions, i.e. 1).</summary>
    public static int Effective(int sent) => sent <= 0 ? 1 : sent;

    /// <summary>
    /// Whether a peer that speaks <paramref name="peerVersion"/> down to <paramref name="peerMinimum"/> can talk to a
    /// binary that speaks <paramref name="version"/> down to <paramref name="minimum"/>: their ranges overlap.
    /// </summary>
    public static bool Compatible(int version, int minimum, int peerVersion, int peerMinimum) =>
        Effective(peerVersion) >= minimum && Effective(peerMinimum) <= version;
}
