using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Geo.ServiceDefaults.Lifecycle;

/// <summary>Registration of <see cref="GracefulShutdown"/>: options, the hosted lifecycle step, readiness, the response marker.</summary>
public static class GracefulShutdownExtensions
{
    /// <summary>Registers the shutdown sequence and sets the host's shutdown timeout to delay + drain.</summary>
    public static IServiceCollection AddGracefulShutdown(this IServiceCollection services)
    {
        services.AddOptions<ShutdownOptions>().BindConfiguration(ShutdownOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<GracefulShutdown>();
        services.AddHostedService(sp => sp.GetRequiredService<GracefulShutdown>());
        services.AddOptions<HostOptions>().Configure<IOptions<ShutdownOptions>>((host, shutdown) =>
            host.ShutdownTimeout = shutdown.Value.Delay + shutdown.Value.Drain);
        services.AddHealthChecks().AddCheck<DrainingHealthCheck>("draining", tags: [Extensions.ReadyTag]);
        return services;
    }

    /// <summary>Marks every response of a draining process (<c>Geo-Draining</c>, <c>Connection: close</c> on HTTP/1.1).</summary>
    public static WebApplication UseGracefulShutdown(this WebApplication app)
    {
        var shutdown = app.Services.GetRequiredService<GracefulShutdown>();
        app.Use(next => GracefulShutdown.MarkResponses(next, shutdown));
        return app;
    }
}
