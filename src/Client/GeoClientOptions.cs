namespace Geo.Client;

/// <summary>Where the client sends requests and how it retries them.</summary>
public sealed class GeoClientOptions
{
    /// <summary>An edge of the deployment, e.g. <c>http://localhost:8080</c>.</summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>
    /// Called before every attempt; a non-null result is sent as <c>Authorization: Bearer …</c>. Null (the default)
    /// sends no credentials.
    /// </summary>
    public Func<CancellationToken, ValueTask<string?>>? AccessToken { get; set; }

    /// <summary>Retries after the first attempt of a transient failure (transport, 409 in flight, 429, 502, 503, 504). Default 4.</summary>
    public int MaxRetries { get; set; } = 4;

    /// <summary>First backoff delay; it doubles per attempt, jittered, unless the server sent <c>Retry-After</c>. Default 200 ms.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest wait between two attempts, <c>Retry-After</c> included. Default 10 s.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of one attempt. Default 30 s.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
