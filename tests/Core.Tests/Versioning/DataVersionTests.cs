using CsCheck;
using Geo.Core.Clock;
using Geo.Core.Versioning;

namespace Geo.Core.Tests.Versioning;

public class DataVersionTests
{
    internal static readonly Gen<DataVersion> Versions =
        Gen.Select(Gen.Long[0, 1L << 40], Gen.OneOf("us-east", "us-west", "eu-west", "eu-central"), (hlc, origin) => new DataVersion(new HlcTimestamp(hlc), origin));

    [Fact]
    public void ETag_round_trips()
    {
        Versions.Sample(v => DataVersion.TryParseETag(v.ToETag(), out var parsed) && parsed == v);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\"\"")]
    [InlineData("\"abc\"")]
    [InlineData("\"0000000000000001-\"")]
    [InlineData("\"zz00000000000001-us-east\"")]
    public void Malformed_ETags_do_not_parse(string text)
    {
        Assert.False(DataVersion.TryParseETag(text, out _));
    }

    [Fact]
    public void Order_is_total_and_antisymmetric()
    {
        Gen.Select(Versions, Versions).Sample((a, b) =>
            Math.Sign(a.CompareTo(b)) == -Math.Sign(b.CompareTo(a)) && (a.CompareTo(b) == 0) == (a == b));
    }

    [Fact]
    public void Same_clock_reading_breaks_ties_by_origin()
    {
        var hlc = HlcTimestamp.From(1_000, 3);
        Assert.True(new DataVersion(hlc, "us-west") > new DataVersion(hlc, "us-east"));
    }
}
