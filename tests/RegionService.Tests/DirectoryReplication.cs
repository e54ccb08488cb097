using Geo.Contracts.Directory;

namespace Geo.RegionService.Tests;

/// <summary>Does by hand what the replicator does for directory entries: read one region's entry, apply it in another.</summary>
internal static class DirectoryReplication
{
    public static async Task CopyUserAsync(Uri from, Uri to, string userId, CancellationToken ct)
    {
        using var source = Geo.Testing.Security.TestPki.Channel(from);
        using var target = Geo.Testing.Security.TestPki.Channel(to);
        var entry = await new Contracts.Directory.Directory.DirectoryClient(source).GetUserAsync(new GetUserRequest { UserId = userId }, cancellationToken: ct);
        var applied = await new Contracts.Directory.Directory.DirectoryClient(target).ApplyUserEntriesAsync(new ApplyUserEntriesRequest { Entries = { entry } }, cancellationToken: ct);
        Assert.NotNull(applied);
    }
}
