using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Geo.ServiceDefaults.Lifecycle;

/// <summary>
/// The stopping state of the process, in two steps. <see cref="Draining"/> fires when the host starts stopping (SIGTERM):
/// readiness goes down, responses carry <c>Geo-Draining: true</c> (and <c>Connection: close</c> on HTTP/1.1), and the
/// service still serves everything that arrives. <see cref="Stopping"/> fires <see cref="ShutdownOptions.Delay"/> later,
/// right before the server stops listening: long-lived streams end then (their clients reconnect elsewhere), while
/// in-flight requests run to completion within <see cref="ShutdownOptions.Drain"/>.
/// </summary>
public sealed partial class GracefulShutdown : IHostedLifecycleService, IDisposable
{
    /// <summary>Response header a draining service sets; an edge takes the destination out when it sees it.</summary>
    public const string DrainingHeader = "Geo-Draining";

    private readonly CancellationTokenSource _draining = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly ShutdownOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<GracefulShutdown> _logger;

    public GracefulShutdown(IOptions<ShutdownOptions> options, TimeProvider time, ILogger<GracefulShutdown> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    /// <summary>True from the moment the host starts stopping.</summary>
    public bool IsDraining => _draining.IsCancellationRequested;

    /// <summary>Cancelled when the host starts stopping (readiness down).</summary>
    public CancellationToken Draining => _draining.Token;

    /// <summary>Cancelled when the server is about to stop listening: long-lived streams should end now.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Marks the process as draining (also what SIGTERM does through the host).</summary>
    public void BeginDraining()
    {
        if (!_draining.IsCancellationRequested)
        {
            LogDraining(_logger, _options.Delay, _options.Drain);
            _draining.Cancel();
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs before any hosted service (the web server included) stops: readiness down, then the delay.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        BeginDraining();
        await Task.Delay(_options.Delay, _time, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _stopping.CancelAsync();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _draining.Dispose();
        _stopping.Dispose();
    }

    /// <summary>Marks responses of a draining process, so proxies stop sending and drop their pooled connections.</summary>
    internal static RequestDelegate MarkResponses(RequestDelegate next, GracefulShutdown shutdown) => context =>
    {
        if (shutdown.IsDraining)
        {
            context.Response.OnStarting(static state =>
            {
                var response = ((HttpContext)state).Response;
                response.Headers[DrainingHeader] = "true";
                if (HttpProtocol.IsHttp10(response.HttpContext.Request.Protocol) || HttpProtocol.IsHttp11(response.HttpContext.Request.Protocol))
                {
                    response.Headers.Connection = "close";
                }

                return Task.CompletedTask;
            }, context);
        }

        return next(context);
    };

    [LoggerMessage(EventId = EventIds.Stopping, Level = LogLevel.Information, Message = "Stopping: readiness is down; serving for {Delay} more, then draining in-flight requests for up to {Drain}")]
    private static partial void LogDraining(ILogger logger, TimeSpan delay, TimeSpan drain);
}

/// <summary>Readiness check that fails while the process drains.</summary>
internal sealed class DrainingHealthCheck(GracefulShutdown shutdown) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(shutdown.IsDraining ? HealthCheckResult.Unhealthy("draining: the process is stopping") : HealthCheckResult.Healthy());
}
