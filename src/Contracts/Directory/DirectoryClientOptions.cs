namespace Geo.Contracts.Directory;

/// <summary>Deadlines and cache lifetimes of <see cref="DirectoryClient"/>.</summary>
public sealed class DirectoryClientOptions
{
    /// <summary>Deadline of every unary call. Default 3 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Deadline of one page of a sequence read (user changes, erasures). Default 5 s.</summary>
    public TimeSpan PageTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a found user stays cached. Default 60 s (entries change only on erase).</summary>
    public TimeSpan UserCacheTtl { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// While the directory cannot answer (unavailable, deadline exceeded), a found user whose cache entry expired no more
    /// than this long ago is still served, so a directory restart or outage does not fail every request of known users.
    /// Zero turns it off. Default 10 min.
    /// </summary>
    public TimeSpan StaleIfUnavailable { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long "no such user" stays cached; short, because a fresh id may not have replicated yet. Default 1 s.</summary>
    public TimeSpan NegativeCacheTtl { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Most users cached; the cache is emptied when it would grow past this. Default 100 000.</summary>
    public int UserCacheCapacity { get; set; } = 100_000;
}

/// <summary>Reconnect and liveness settings of <see cref="ShardMapFollower"/>.</summary>
public sealed class ShardMapFollowerOptions
{
    /// <summary>First delay before reconnecting; doubles per failed attempt, with full jitter. Default 100 ms.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Largest delay between reconnect attempts. Default 5 s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A stream that delivers nothing (not even a heartbeat) for this long is treated as dead and reopened; raised to three
    /// heartbeat intervals when the server announces a longer one. Default 15 s.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Deadline of one watch call; the follower reopens the stream when it passes. Default 10 min.</summary>
    public TimeSpan StreamDeadline { get; set; } = TimeSpan.FromMinutes(10);
}
