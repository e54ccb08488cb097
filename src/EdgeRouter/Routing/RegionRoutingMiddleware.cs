using Geo.Core.Topology;
using Geo.Core.Users;
using Geo.EdgeRouter.Directory;
using Geo.EdgeRouter.Headers;
using Geo.EdgeRouter.Health;
using Geo.EdgeRouter.Telemetry;
using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Forwarder;

namespace Geo.EdgeRouter.Routing;

/// <summary>
/// The first step of the proxy pipeline: finds the user's residency and home region (or, for <c>POST /v1/users</c>, the
/// residency in the body), picks the first healthy allowed region in failover order, and reassigns the request to that
/// region's cluster. Everything it cannot route it answers itself, without forwarding.
/// </summary>
internal sealed partial class RegionRoutingMiddleware(
    RequestDelegate next,
    GeoTopology topology,
    IOptions<EdgeSiteOptions> site,
    IOptions<EdgeOptions> options,
    UserLocator users,
    IProxyStateLookup proxy,
    EdgeMetrics metrics,
    ILogger<RegionRoutingMiddleware> logger)
{
    private const int InMemoryBodyBytes = 64 * 1024;

    private readonly string _edgeRegion = site.Value.Region;
    private readonly EdgeOptions _options = options.Value;

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        var ct = context.RequestAborted;
        string residency;
        string preferred;
        string? home = null;
        if (RequestShape.IsCreateUser(request))
        {
            var (shape, problem) = await RequestShape.ReadCreateAsync(request, _options.MaxCreateBodyBytes, ct);
            if (problem is not null)
            {
                await RejectAsync(context, problem, "invalid-create");
                return;
            }

            if (!topology.IsKnownResidency(shape!.Residency))
            {
                await RejectAsync(context, GeoProblems.Create(StatusCodes.Status400BadRequest, "unknown-residency", "Unknown residency",
                    $"Residency '{Truncate(shape.Residency)}' is unknown; use one of: {string.Join(", ", [GeoTopology.GlobalResidency, .. topology.Jurisdictions])}."), "unknown-residency");
                return;
            }

            residency = shape.Residency;

            // An explicit, allowed home region creates the user there, so its directory holds the entry from the start;
            // otherwise the edge's own region, else the nearest allowed (the failover order does the rest). A home region
            // outside the residency is forwarded to an allowed region, which refuses it with its own 400.
            preferred = shape.HomeRegion is { } requested && topology.IsAllowed(residency, requested) ? requested : _edgeRegion;
        }
        else if (RequestShape.UserIdOf(request.Path) is { } userId)
        {
            // One spelling per user, the lowercase UUID issued at creation; the regional API refuses any other alike (404).
            var lookup = UserIds.IsCanonical(userId) ? await users.FindAsync(userId, ct) : UserLookup.NotFound;
            if (lookup.DirectoryUnavailable)
            {
                LogDirectoryUnavailable(logger);
                context.Response.Headers.RetryAfter = "1";
                await RejectAsync(context, GeoProblems.Create(StatusCodes.Status503ServiceUnavailable, "dependency-unavailable", "Service unavailable",
                    "No directory could say where this user lives; retry shortly."), "directory-unavailable");
                return;
            }

            if (lookup.Entry is not { } entry)
            {
                await RejectAsync(context, GeoProblems.Create(StatusCodes.Status404NotFound, "user-not-found", "User not found", $"No user '{Truncate(userId)}'."), "user-not-found");
                return;
            }

            residency = entry.Residency;
            home = entry.HomeRegion;
            preferred = home;
        }
        else if (RequestShape.IsContract(request.Path))
        {
            // Every region serves the same document; nothing of a user is read.
            residency = GeoTopology.GlobalResidency;
            preferred = _edgeRegion;
        }
        else
        {
            await RejectAsync(context, GeoProblems.Create(StatusCodes.Status404NotFound, "not-found", "Not found", $"No API at '{Truncate(request.Path.Value ?? "")}'."), "not-found");
            return;
        }

        var order = RegionChooser.FailoverOrder(topology, residency, preferred);
        context.Response.OnStarting(() =>
        {
            if (home is not null)
            {
                context.Response.Headers.TryAdd(EdgeHeaders.HomeRegion, home);
            }

            if (context.Features.Get<RoutedRequest>() is { Failover: true })
            {
                context.Response.Headers[EdgeHeaders.Failover] = "true";
            }

            return Task.CompletedTask;
        });

        request.Headers[EdgeHeaders.EdgeRegion] = _edgeRegion;
        if (request.ContentLength > _options.MaxBodyBytes)
        {
            await RejectAsync(context, GeoProblems.Create(StatusCodes.Status413PayloadTooLarge, "body-too-large", "Body too large",
                $"The body exceeds the edge's limit of {_options.MaxBodyBytes} bytes."), "body-too-large");
            return;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            bodySize.MaxRequestBodySize = _options.MaxBodyBytes; // a chunked body is cut off at the same limit
        }

        if (HasBody(request) && !request.Body.CanSeek)
        {
            // A connect failure is retried elsewhere; the body must be readable again for that. Bounded: in memory up to
            // 64 KiB (a document), on disk up to the limit. Read whole before any destination sees it (store and
            // forward): otherwise a destination that answers before YARP finished copying the body leaves a read of the
            // client's body running when the request ends, and Kestrel fails to drain it ("Reading is already in
            // progress", logged as an error). A body over the limit or cut short is a BadHttpRequestException here,
            // which the problem-details handler answers (413 body-too-large, 400 bad-request).
            request.EnableBuffering(bufferThreshold: InMemoryBodyBytes, bufferLimit: _options.MaxBodyBytes);
            await request.Body.DrainAsync(ct);
            request.Body.Position = 0;
        }

        // Destinations that refused the connection during this request: never tried twice, whatever health says.
        HashSet<string>? refused = null;
        while (true)
        {
            var choice = RegionChooser.Choose(topology, residency, preferred, region => IsAvailable(region, refused));
            if (choice.Target is not { } target || !proxy.TryGetCluster(target, out var cluster))
            {
                context.Features.Set<RoutedRequest>(null);
                LogNoRegion(logger, residency, string.Join(",", order));
                context.Response.Headers.RetryAfter = _options.NoRegionRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await RejectAsync(context, GeoProblems.Create(StatusCodes.Status503ServiceUnavailable, "no-allowed-region-healthy", "No allowed region is healthy",
                    $"Every region allowed for residency '{residency}' ({string.Join(", ", order)}) is unavailable; retry after the delay in Retry-After."),
                    "no-allowed-region-healthy");
                return;
            }

            context.ReassignProxyRequest(cluster);
            if (refused is not null)
            {
                var feature = context.GetReverseProxyFeature();
                feature.AvailableDestinations = feature.AvailableDestinations.Where(d => !refused.Contains(d.DestinationId)).ToList();
            }

            context.Features.Set(new RoutedRequest(residency, target, choice.IsFailover));
            metrics.Routed(target, choice.IsFailover);
            LogRouted(logger, target, choice.IsFailover);
            await next(context);

            // A destination that refused the connection never saw the request, and an idempotent request (or one with an
            // Idempotency-Key) that failed before any answer may safely run again: send it to the next choice at once
            // instead of answering 502 (the passive policy has already taken the destination out). Anything else stands.
            var failure = context.GetForwarderErrorFeature();
            if (!DestinationFailurePolicy.MayResend(failure, request) || context.Response.HasStarted
                || context.GetReverseProxyFeature().ProxiedDestination is not { } failed
                || (HasBody(request) && !request.Body.CanSeek))
            {
                return;
            }

            refused ??= new HashSet<string>(StringComparer.Ordinal);
            if (!refused.Add(failed.DestinationId))
            {
                return; // cannot happen (filtered above); never loop
            }

            LogRetrying(logger, failed.DestinationId, failure!.Exception?.Message ?? "connection failed");
            metrics.Retried(ResidencyGuard.RegionOfDestination(failed.DestinationId));
            context.Features.Set<IForwarderErrorFeature>(null);
            context.Response.Clear();
            if (request.Body.CanSeek)
            {
                request.Body.Position = 0;
            }
        }
    }

    private static bool HasBody(HttpRequest request) => request.ContentLength > 0 || request.Headers.TransferEncoding.Count > 0;

    private bool IsAvailable(string region, HashSet<string>? refused)
        => proxy.TryGetCluster(region, out var cluster)
            && cluster.DestinationsState.AvailableDestinations.Any(d => refused is null || !refused.Contains(d.DestinationId));

    private async Task RejectAsync(HttpContext context, ProblemHttpResult problem, string reason)
    {
        metrics.Rejected(reason);
        await problem.ExecuteAsync(context);
    }

    private static string Truncate(string value) => value.Length <= 80 ? value : value[..80] + "…";

    [LoggerMessage(EventId = EventIds.Routed, Level = LogLevel.Debug, Message = "Routed to {RegionId} (failover: {Failover})")]
    private static partial void LogRouted(ILogger logger, string regionId, bool failover);

    [LoggerMessage(EventId = EventIds.RetriedAfterConnectFailure, Level = LogLevel.Warning, Message = "Destination {DestinationId} failed the request before answering ({Reason}); sending it to the next choice")]
    private static partial void LogRetrying(ILogger logger, string destinationId, string reason);

    [LoggerMessage(EventId = EventIds.NoAllowedRegionHealthy, Level = LogLevel.Warning, Message = "No healthy region for residency {Residency}; tried {Regions}")]
    private static partial void LogNoRegion(ILogger logger, string residency, string regions);

    [LoggerMessage(EventId = EventIds.DirectoryUnavailable, Level = LogLevel.Warning, Message = "A user lookup found nothing, but not every directory answered")]
    private static partial void LogDirectoryUnavailable(ILogger logger);
}

/// <summary>What routing decided for a request; the residency guard checks it right before forwarding.</summary>
internal sealed record RoutedRequest(string Residency, string Region, bool Failover);
