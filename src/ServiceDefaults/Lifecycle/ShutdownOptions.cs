using System.ComponentModel.DataAnnotations;

namespace Geo.ServiceDefaults.Lifecycle;

/// <summary>How a Geo service stops on SIGTERM (section <c>Geo:Shutdown</c>, shared by every service).</summary>
public sealed class ShutdownOptions
{
    public const string SectionName = "Geo:Shutdown";

    /// <summary>
    /// How long a stopping service keeps accepting and serving with <c>/healthz/ready</c> down (and <c>Geo-Draining</c> on
    /// every response) before it stops listening, so edges and load balancers move away first. Default 2 s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan Delay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long in-flight requests and streams then get to finish before the host gives up on them. Default 20 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan Drain { get; set; } = TimeSpan.FromSeconds(20);
}
