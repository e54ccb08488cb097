using Geo.Core.Topology;
using Grpc.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Geo.EdgeRouter.Directory;

/// <summary>
/// Ready once the connections to every region's directory were tried (<see cref="UserLocator.WarmUpAsync"/>), the
/// topology is loaded and the local directory answers (a lookup in the last 10 s, or a probe now). With the
/// directory down but users looked up in the last minute, the edge still routes from its cache and peers: degraded, not unready.
/// </summary>
internal sealed class DirectoryHealthCheck(UserLocator locator, GeoTopology topology, IOptions<EdgeSiteOptions> site, TimeProvider time) : IHealthCheck
{
    private static readonly TimeSpan RecentEnough = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan WarmFor = TimeSpan.FromMinutes(1);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var regions = $"topology: {topology.Regions.Count} regions";
        if (!locator.IsWarm)
        {
            return HealthCheckResult.Unhealthy("connecting to the regions' directories");
        }

        var last = locator.LastLocalSuccess;
        if (last is { } seen && time.GetUtcNow() - seen < RecentEnough)
        {
            return HealthCheckResult.Healthy(regions);
        }

        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(2));
            await locator.Local.GetShardMapAsync(site.Value.Region, limit.Token);
            return HealthCheckResult.Healthy(regions);
        }
        catch (RpcException ex) when (ex.StatusCode is not (StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled))
        {
            // It answered, even if with an error: reachable.
            return HealthCheckResult.Healthy(regions);
        }
        catch (Exception ex) when (ex is RpcException or OperationCanceledException)
        {
            // Also when the prober gave up (its token): an answer, not an exception, keeps the health log quiet.
            return last is { } warm && time.GetUtcNow() - warm < WarmFor
                ? HealthCheckResult.Degraded($"directory of {site.Value.Region} unreachable; routing from cache and peers")
                : HealthCheckResult.Unhealthy($"directory of {site.Value.Region} unreachable: {ex.Message}");
        }
    }
}
