namespace Geo.RegionService.Tests;

/// <summary>Tests of this collection share one <see cref="RegionCluster"/> and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<RegionCluster>
{
    public const string Name = "region cluster";
}
