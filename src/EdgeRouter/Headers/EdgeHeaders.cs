namespace Geo.EdgeRouter.Headers;

/// <summary>
/// Headers of docs/architecture.md §4 as the edge handles them: a request id on every request (the client's, else a new one),
/// forwarded and echoed; <c>Geo-Edge-Region</c> on every response. Runs first, so even shed requests carry both.
/// </summary>
internal static class EdgeHeaders
{
    public const string RequestId = "X-Request-Id";
    public const string Region = Contracts.GeoHeaders.Region;
    public const string HomeRegion = Contracts.GeoHeaders.HomeRegion;
    public const string Failover = Contracts.GeoHeaders.Failover;
    public const string EdgeRegion = Contracts.GeoHeaders.EdgeRegion;

    private const int MaxRequestIdLength = 128;

    /// <summary>The client's id when it is short printable ASCII; otherwise a fresh UUIDv7 (a hostile id is replaced, not echoed).</summary>
    public static string RequestIdFor(string? supplied, TimeProvider time)
        => supplied is { Length: > 0 and <= MaxRequestIdLength } && supplied.All(c => c is > ' ' and < (char)127)
            ? supplied
            : Guid.CreateVersion7(time.GetUtcNow()).ToString("N");

    public static IApplicationBuilder UseEdgeHeaders(this IApplicationBuilder app, string edgeRegion, TimeProvider time)
        => app.Use((context, next) =>
        {
            var id = RequestIdFor(context.Request.Headers[RequestId].ToString(), time);
            context.Request.Headers[RequestId] = id;
            context.TraceIdentifier = id;
            context.Response.OnStarting(() =>
            {
                context.Response.Headers[RequestId] = id;
                context.Response.Headers[EdgeRegion] = edgeRegion;
                return Task.CompletedTask;
            });
            return next(context);
        });
}
