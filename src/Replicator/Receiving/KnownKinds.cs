using Geo.Contracts;
using Geo.Replicator.Hosting;
using Microsoft.Extensions.Options;
using WireKind = Geo.Contracts.Replication.ChangeKind;

namespace Geo.Replicator.Receiving;

/// <summary>
/// The change kinds this receiver applies (docs/operations.md "Upgrades"). A change of any other kind, from a newer
/// sender, is never acknowledged: its stream stops before it and the sender keeps it until this region runs a binary
/// that knows the kind. <see cref="ReplicatorOptions.UnsupportedKinds"/> removes kinds from the set, so a test can run
/// this binary as the older one it is compared with.
/// </summary>
internal sealed class KnownKinds
{
    private static readonly WireKind[] Compiled = [WireKind.Document, WireKind.Counter, WireKind.UserErase];

    private readonly HashSet<WireKind> _kinds;

    public KnownKinds(IOptions<ReplicatorOptions> options)
    {
        var unsupported = options.Value.UnsupportedKinds.Select(k => k switch
        {
            Storage.ChangeKind.Document => WireKind.Document,
            Storage.ChangeKind.Counter => WireKind.Counter,
            Storage.ChangeKind.UserErase => WireKind.UserErase,
            _ => WireKind.Unspecified,
        });
        _kinds = [.. Compiled.Except(unsupported)];
    }

    public IReadOnlyCollection<WireKind> All => _kinds;

    /// <summary>Every kind this binary was built with (what its sender may ship).</summary>
    public static IReadOnlyList<WireKind> Built => Compiled;

    /// <summary>Whether this receiver applies <paramref name="kind"/> (an enum value this binary was built without is never known).</summary>
    public bool Knows(WireKind kind) => _kinds.Contains(kind);

    /// <summary>The kind as text for logs and metrics: its name when this binary has one, else its number.</summary>
    public static string Name(WireKind kind) => Enum.IsDefined(kind) ? kind.ToString() : ((int)kind).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Whether a peer speaking <paramref name="version"/> down to <paramref name="minimum"/> is inside this binary's window.</summary>
    public static bool Compatible(int version, int minimum) =>
        ProtocolVersions.Compatible(ProtocolVersions.Replication, ProtocolVersions.MinimumReplication, version, minimum);
}
