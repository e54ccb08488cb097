using Geo.Core.Topology;
using Geo.RegionService.Directory;

namespace Geo.RegionService.Users;

/// <summary>The body of a user creation.</summary>
internal sealed record CreateUserRequest(string? Residency, string? HomeRegion);

/// <summary>A user's placement: residency, home region and every region that may hold the user's data.</summary>
internal sealed record UserView(string UserId, string Residency, string HomeRegion, IReadOnlyList<string> Regions)
{
    public static UserView Of(UserRecord user, GeoTopology topology) => new(user.UserId, user.Residency, user.HomeRegion, topology.AllowedRegions(user.Residency));
}
