using System.Net;

namespace Geo.Observability.Otlp;

/// <summary>The test receiver itself: a service still exporting while a test system stops must not fail the fixture.</summary>
public sealed class OtlpReceiverTests
{
    [Fact]
    public async Task Stopping_while_an_export_is_still_arriving_does_not_throw()
    {
        var receiver = new OtlpReceiver();
        using var client = new HttpClient();
        using var sending = new CancellationTokenSource();
        var content = new TrickleContent();
        var post = client.PostAsync(new Uri(receiver.Endpoint, "/v1/traces"), content, sending.Token);
        await content.Begun.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await Task.Delay(300, TestContext.Current.CancellationToken); // the receiver has the request and is reading its body

        await receiver.DisposeAsync(); // the fixture's stop: this threw when the body read failed under it

        await sending.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => post); // the export itself is cut short, as at a real stop
    }

    /// <summary>A body that sends a few bytes, then waits until the request is cancelled (an export still in flight).</summary>
    private sealed class TrickleContent : HttpContent
    {
        public TaskCompletionSource Begun { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(new byte[] { 0x0a, 0x10 }, cancellationToken);
            await stream.FlushAsync(cancellationToken);
            Begun.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
