using Geo.Contracts;

namespace Geo.RegionService.Api;

/// <summary>The Geo headers as the regional API sets them (names in <see cref="GeoHeaders"/>).</summary>
internal static class ApiHeaders
{
    /// <summary>Sets the user's placement headers on the response.</summary>
    public static void SetUser(HttpContext http, string homeRegion, string answeringRegion)
    {
        http.Response.Headers[GeoHeaders.HomeRegion] = homeRegion;
        if (!string.Equals(homeRegion, answeringRegion, StringComparison.Ordinal))
        {
            http.Response.Headers[GeoHeaders.Failover] = "true";
        }
    }
}
