using Microsoft.AspNetCore.Builder;

namespace Geo.ServiceDefaults;

/// <summary>How every Geo service creates its host builder.</summary>
public static class GeoWebApplication
{
    /// <summary>
    /// <see cref="WebApplication.CreateBuilder(WebApplicationOptions)"/> with the content root at the service's own
    /// directory (<see cref="AppContext.BaseDirectory"/>) rather than the working directory. The host watches its content
    /// root, subdirectories included, for the configuration files it would reload; a service started from a checkout
    /// (<c>./geo up</c> starts all sixteen from the repository root) watched the whole tree, PostgreSQL's data directory
    /// and the logs among it, and every WAL write woke every service. Geo reads no file relative to the content root:
    /// its settings come from the command line and the environment, and file paths in them are taken as given.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(string[] args) => WebApplication.CreateBuilder(new WebApplicationOptions
    {
        Args = args,
        ContentRootPath = AppContext.BaseDirectory,
    });
}
