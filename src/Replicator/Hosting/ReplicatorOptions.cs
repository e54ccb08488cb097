using System.ComponentModel.DataAnnotations;

namespace Geo.Replicator.Hosting;

/// <summary>Where this replicator sits: the topology file and its region (section <c>Geo</c>, shared with every service).</summary>
internal sealed class GeoSiteOptions
{
    public const string SectionName = "Geo";

    /// <summary>Path of the topology JSON (docs/architecture.md §3). Required.</summary>
    public string Topology { get; set; } = string.Empty;

    /// <summary>This region's id; must be a region of the topology. Required.</summary>
    public string Region { get; set; } = string.Empty;

    /// <summary>Remote HLC readings further ahead than this are quarantined. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>Replication settings (section <c>Replicator</c>).</summary>
internal sealed class ReplicatorOptions
{
    public const string SectionName = "Replicator";

    /// <summary>Addresses that override the topology's <c>replicator</c> URL of a peer (key: region id), e.g. a proxy.</summary>
    public Dictionary<string, string> PeerAddresses { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Most change-log entries per batch (batches are also capped by <see cref="BatchBytes"/>). Default 200.</summary>
    [Range(1, 1000)]
    public int BatchSize { get; set; } = 200;

    /// <summary>
    /// Largest gRPC message this replicator sends or accepts, on its server and on its peer channels alike (one setting,
    /// so a sender never builds what its receiver refuses). Replication batches and anti-entropy row pages are cut at
    /// <see cref="BatchBytes"/>, a quarter of it; one change larger than that still travels, alone. Every region must use
    /// the same value. Default 4 MiB (gRPC's default).
    /// </summary>
    [Range(1024 * 1024, 256 * 1024 * 1024)]
    public int MaxMessageBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Byte cap of one batch or row page (its changes' encoded size): a quarter of <see cref="MaxMessageBytes"/>.</summary>
    public int BatchBytes => MaxMessageBytes / 4;

    /// <summary>
    /// Batches per stream sent and not yet acknowledged: bounds memory when a peer is slow. Default 4. Only full batches
    /// (a backlog) fill the window: a batch that reached the end of the log waits for the acknowledgements in flight, so
    /// changes that commit meanwhile travel together in the next batch instead of one batch each.
    /// </summary>
    [Range(1, 64)]
    public int Window { get; set; } = 4;

    /// <summary>How often the erase worker looks for erase markers this region has not completed (Erasure/EraseWorker.cs). Default 1 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan EraseInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Deadline of one anti-entropy call to a peer (a digest read, a page of a bucket's rows). Default 60 s.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan AntiEntropyCallTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How often a stream that cannot be pushed is read: the directory's entries when the directory is an older binary without WatchUserChanges. Default 100 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:10")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How often an idle sender of a pushed stream (a shard's change log: the shard's NOTIFY wakes it at each commit;
    /// the directory's entries: its WatchUserChanges pulses) looks anyway, for a notification that was lost (a writer
    /// that died between its commit and its NOTIFY, a LISTEN connection or a watch being re-established).
    /// Default 1 s: the bound on lag in those cases only.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan PushedPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often a sender writes a stream's acknowledged checkpoint to the shard, at most: the first acknowledgement after
    /// a quiet spell is written at once, later ones at the end of the interval (the last one always). A checkpoint a
    /// restart does not find costs a resend of what was acknowledged since, which the receiver skips (applying is
    /// idempotent). Default 200 ms; zero writes every acknowledgement.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Heartbeat period on every peer stream (lag is measured from them). Default 500 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>A stream with no reply for this long is considered dead and reconnected. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "00:10:00")]
    public TimeSpan PeerTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of one page read of this region's directory change log (the directory stream's sender). Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan DirectoryReadTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Deadline of applying a peer's directory entries to this region's directory. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan DirectoryApplyTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First reconnect delay; doubles per failure with full jitter up to <see cref="MaxBackoff"/>. Default 200 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Largest reconnect delay. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Consecutive failed connections to a peer that open its circuit breaker. Default 5.</summary>
    [Range(1, 1000)]
    public int BreakerFailures { get; set; } = 5;

    /// <summary>How long an open breaker waits before one probe connection. Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a refused or quarantined batch waits before it is sent again. Default 500 ms.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan RewindDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Period of anti-entropy with same-jurisdiction peers; zero turns the periodic run off. Default 5 min.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan AntiEntropyInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often acknowledged change-log entries are pruned. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Change kinds this receiver treats as unknown, as a binary that predates them would: changes of these kinds stop
    /// their stream unacknowledged. Only for the mixed-version test (a receiver "before" and "after" an upgrade);
    /// empty in every deployment. Default empty.
    /// </summary>
    public List<Storage.ChangeKind> UnsupportedKinds { get; set; } = [];
}
