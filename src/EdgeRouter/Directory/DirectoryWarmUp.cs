namespace Geo.EdgeRouter.Directory;

/// <summary>Starts <see cref="UserLocator.WarmUpAsync"/> with the host, without delaying the start (readiness waits for it).</summary>
internal sealed class DirectoryWarmUp(UserLocator locator) : BackgroundService
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => locator.WarmUpAsync(Bound, stoppingToken);
}
