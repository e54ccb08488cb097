namespace Geo.Contracts;

/// <summary>The Geo headers of the public API (docs/api.md), one spelling for the edge and the regional API.</summary>
public static class GeoHeaders
{
    /// <summary>The region that answered (every response of the API).</summary>
    public const string Region = "Geo-Region";

    /// <summary>The user's home region (when the user is known).</summary>
    public const string HomeRegion = "Geo-Home-Region";

    /// <summary><c>true</c> when a region other than the user's home region answered.</summary>
    public const string Failover = "Geo-Failover";

    /// <summary>The region whose edge took the request: on every edge response, and to the API on a create.</summary>
    public const string EdgeRegion = "Geo-Edge-Region";
}
