using Geo.Contracts.Directory;
using Geo.Contracts.Replication;
using Geo.Core.Clock;
using Geo.Core.Placement;
using Geo.Core.Versioning;
using Geo.Storage;
using WireChange = Geo.Contracts.Replication.Change;
using WireKind = Geo.Contracts.Replication.ChangeKind;
using WireVersion = Geo.Contracts.Replication.Version;

namespace Geo.Replicator.Wire;

/// <summary>Converts between storage changes, directory entries and their wire form.</summary>
internal static class ChangeMapping
{
    public static WireChange ToWire(ShardChange change)
    {
        var wire = new WireChange
        {
            Seq = change.Seq,
            Kind = change.Kind switch
            {
                Storage.ChangeKind.Document => WireKind.Document,
                Storage.ChangeKind.Counter => WireKind.Counter,
                Storage.ChangeKind.UserErase => WireKind.UserErase,
                _ => WireKind.Unspecified,
            },
            UserId = change.UserId,
            Collection = change.Collection ?? string.Empty,
            Key = change.Key ?? string.Empty,
            Deleted = change.Deleted,
            CounterName = change.CounterName ?? string.Empty,
            CounterRegion = change.CounterRegion ?? string.Empty,
            Increments = change.Increments,
            Decrements = change.Decrements,
            Version = ToWire(change.Version),
            Origin = change.Origin,
            CreatedAtUnixMs = change.CreatedAt.ToUnixTimeMilliseconds(),
        };
        if (change.Body is not null)
        {
            wire.Body = change.Body;
        }

        if (change.PreviousVersion is { } previous)
        {
            wire.PreviousVersion = ToWire(previous);
        }

        if (change.EraseEpoch is { } epoch)
        {
            wire.EraseEpoch = ToWire(epoch);
        }

        if (change.TraceParent is { } traceParent)
        {
            wire.TraceParent = traceParent;
        }

        return wire;
    }

    /// <summary>The storage form, or null when the wire change is malformed (unknown kind, missing fields).</summary>
    public static ShardChange? FromWire(WireChange wire)
    {
        if (string.IsNullOrEmpty(wire.UserId) || wire.Version is null || string.IsNullOrEmpty(wire.Origin))
        {
            return null;
        }

        var kind = wire.Kind switch
        {
            WireKind.Document when wire.Collection.Length > 0 && wire.Key.Length > 0 => Storage.ChangeKind.Document,
            WireKind.Counter when wire.CounterName.Length > 0 && wire.CounterRegion.Length > 0 => Storage.ChangeKind.Counter,
            WireKind.UserErase => Storage.ChangeKind.UserErase,
            _ => (Storage.ChangeKind?)null,
        };
        if (kind is null || (kind == Storage.ChangeKind.Document && !wire.Deleted && !wire.HasBody))
        {
            return null;
        }

        return new ShardChange
        {
            Seq = wire.Seq,
            Kind = kind.Value,
            Bucket = Buckets.Of(wire.UserId),
            UserId = wire.UserId,
            Collection = kind == Storage.ChangeKind.Document ? wire.Collection : null,
            Key = kind == Storage.ChangeKind.Document ? wire.Key : null,
            Body = wire.HasBody && !wire.Deleted ? wire.Body : null,
            Deleted = wire.Deleted,
            CounterName = kind == Storage.ChangeKind.Counter ? wire.CounterName : null,
            CounterRegion = kind == Storage.ChangeKind.Counter ? wire.CounterRegion : null,
            Increments = wire.Increments,
            Decrements = wire.Decrements,
            Version = FromWire(wire.Version),
            PreviousVersion = wire.PreviousVersion is { } p ? FromWire(p) : null,
            EraseEpoch = wire.EraseEpoch is { } e ? FromWire(e) : null,
            Origin = wire.Origin,
            CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(wire.CreatedAtUnixMs),
            TraceParent = wire.HasTraceParent ? wire.TraceParent : null,
        };
    }

    public static DirectoryEntry ToWire(UserChange change) => new()
    {
        UserId = change.Entry.UserId,
        Residency = change.Entry.Residency,
        HomeRegion = change.Entry.HomeRegion,
        Version = new WireVersion { Hlc = change.Entry.Version.Hlc, Origin = change.Entry.Version.Origin },
        Deleted = change.Entry.Deleted,
        Seq = change.Seq,
    };

    public static UserEntry FromWire(DirectoryEntry entry) => new()
    {
        UserId = entry.UserId,
        Residency = entry.Residency,
        HomeRegion = entry.HomeRegion,
        Version = new EntryVersion { Hlc = entry.Version?.Hlc ?? 0, Origin = entry.Version?.Origin ?? string.Empty },
        Deleted = entry.Deleted,
    };

    private static WireVersion ToWire(DataVersion version) => new() { Hlc = version.Hlc.Value, Origin = version.Origin };

    private static DataVersion FromWire(WireVersion version) => new(new HlcTimestamp(version.Hlc), version.Origin);
}
