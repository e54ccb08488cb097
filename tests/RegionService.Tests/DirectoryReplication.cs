using Geo.Contracts.Directory;
using Grpc.Net.Client;

namespace Geo.RegionService.Tests;

/// <summary>Does by hand what the replicator does for directory entries: read one region's entry, apply it in another.</summary>
internal static class DirectoryReplication
{
    public static async Task CopyUserAsync(Uri from, Uri to, string userId, CancellationToken ct)
    {
        using var source = GrpcChannel.ForAddress(from);
        using var target = GrpcChannel.ForAddress(to);
        var entry = await new Contracts.Directory.Directory.DirectoryClient(source).GetUserAsync(new GetUserRequest { UserId = userId }, cancellationToken: ct);
        var applied = await new Contracts.Directory.Directory.DirectoryClient(target).ApplyUserEntriesAsync(new ApplyUserEntriesRequest { Entries = { entry } }, cancellationToken: ct);
        Assert.NotNull(applied);
    }
}
