using Geo.Cli.CommandLine;
using Geo.Cli.Shards;
using Geo.Core.Topology;
using Geo.Testing.Security;
using Grpc.Core;

namespace Geo.Cli.Tests.Shards;

/// <summary>
/// How geoctl's calls to a region's directory meet faults: a call that never reached the directory is retried a few
/// times (a fresh geoctl beside live traffic can miss its first connect), one that may have reached it is not.
/// No call here touches the network: the call is a function that fails the way a gRPC call does.
/// </summary>
public sealed class RegionConnectionTests : IDisposable
{
    private static readonly RpcException Refused = new(new Grpc.Core.Status(StatusCode.Unavailable, "Error connecting to subchannel."));

    // What SocketsHttpHandler's ConnectTimeout becomes in a gRPC call: Cancelled, with a TimeoutException inside.
    private static readonly RpcException ConnectTimedOut = new(new Grpc.Core.Status(StatusCode.Cancelled, "Error starting gRPC call.",
        new TaskCanceledException("The operation was canceled.", new TimeoutException("A connection could not be established within the configured ConnectTimeout."))));

    private readonly TestTopologies _files = new();

    public void Dispose() => _files.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_call_that_never_reached_the_directory_is_retried_and_its_answer_returned()
    {
        await using var region = Open();
        var failures = new Queue<RpcException>([Refused, ConnectTimedOut]);
        var attempts = 0;

        var answer = await region.CallAsync(_ =>
        {
            attempts++;
            return failures.TryDequeue(out var failure) ? Task.FromException<string>(failure) : Task.FromResult("map");
        }, Ct);

        Assert.Equal("map", answer);
        Assert.Equal(3, attempts);
    }

    [Fact]
    public async Task A_directory_that_stays_unreachable_is_reported_as_unavailable_naming_it_after_a_capped_number_of_attempts()
    {
        await using var region = Open();
        var attempts = 0;

        var error = await Assert.ThrowsAsync<GeoCliException>(() => region.CallAsync<string>(_ =>
        {
            attempts++;
            return Task.FromException<string>(ConnectTimedOut);
        }, Ct));

        Assert.Equal(ExitCodes.Unavailable, error.ExitCode);
        Assert.Contains("The directory of us-east at http://127.0.0.1:8100/ did not answer", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectTimeout", error.Message, StringComparison.Ordinal);
        Assert.Equal(3, attempts);
    }

    [Fact]
    public async Task A_call_whose_deadline_passed_is_not_retried_since_the_directory_may_have_acted_on_it()
    {
        await using var region = Open();
        var attempts = 0;

        var error = await Assert.ThrowsAsync<GeoCliException>(() => region.CallAsync<string>(_ =>
        {
            attempts++;
            return Task.FromException<string>(new RpcException(new Grpc.Core.Status(StatusCode.DeadlineExceeded, "Deadline Exceeded")));
        }, Ct));

        Assert.Equal(ExitCodes.Unavailable, error.ExitCode);
        Assert.Equal(1, attempts);
    }

    private RegionConnection Open()
    {
        var topology = TopologyLoader.Load(_files.WithShards(new Dictionary<string, string> { ["us-east-0"] = "Host=127.0.0.1;Port=1;Database=none" }));
        return RegionConnection.Open(topology, "us-east", TestPki.Harness);
    }
}
