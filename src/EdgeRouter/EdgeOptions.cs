using System.ComponentModel.DataAnnotations;

namespace Geo.EdgeRouter;

/// <summary>Where this edge runs (section <c>Geo</c>, shared with every service).</summary>
internal sealed class EdgeSiteOptions
{
    public const string SectionName = "Geo";

    /// <summary>The edge's own region; must be a region of the topology.</summary>
    public string Region { get; set; } = string.Empty;

    /// <summary>Path of the topology JSON (docs/architecture.md §3).</summary>
    public string Topology { get; set; } = string.Empty;
}

/// <summary>The edge's limits, health checks and timeouts (section <c>Geo:Edge</c>).</summary>
internal sealed class EdgeOptions
{
    public const string SectionName = "Geo:Edge";

    /// <summary>Requests per second one client (its token's subject, else its IP) may sustain. Default 100.</summary>
    [Range(1, 1_000_000)]
    public int ClientRequestsPerSecond { get; set; } = 100;

    /// <summary>Requests one client may send in a burst above the sustained rate. Default 200.</summary>
    [Range(1, 1_000_000)]
    public int ClientBurst { get; set; } = 200;

    /// <summary>Requests per second addressed to one user. Default 20.</summary>
    [Range(1, 1_000_000)]
    public int UserRequestsPerSecond { get; set; } = 20;

    /// <summary>Requests to one user in a burst above the sustained rate. Default 40.</summary>
    [Range(1, 1_000_000)]
    public int UserBurst { get; set; } = 40;

    /// <summary>How often each API destination's <c>/healthz/ready</c> is probed. Default 5 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Deadline of one active probe. Default 2 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan HealthCheckTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Failed probes in a row that mark a destination unhealthy. Default 2.</summary>
    [Range(1, 100)]
    public int HealthCheckFailureThreshold { get; set; } = 2;

    /// <summary>How long a destination stays out after a transport failure or a 502/504 answer (see DestinationFailurePolicy). Default 10 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan PassiveReactivationPeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>A proxied call fails (502/504) when the upstream sends nothing for this long. Default 30 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan ProxyTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest <c>POST /v1/users</c> body the edge buffers to read the residency. Default 16 KiB.</summary>
    [Range(64, 1024 * 1024)]
    public int MaxCreateBodyBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// Largest body the edge forwards; larger ones are answered 413 without forwarding. Bodies are buffered (so a refused
    /// connection can be retried elsewhere) in memory up to 64 KiB, beyond that in a temporary file. Default 1 MiB.
    /// </summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>How long a miss in the local directory waits for peer directories (asked in parallel). Default 1 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:30")]
    public TimeSpan PeerLookupTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Seconds put in <c>Retry-After</c> when no allowed region is healthy. Default 2.</summary>
    [Range(1, 3600)]
    public int NoRegionRetryAfterSeconds { get; set; } = 2;
}
