using System.Collections.Concurrent;
using Geo.Contracts.Replication;
using Geo.Core.Signals;
using Geo.Replicator.Hosting;
using Geo.Replicator.Sending;
using Microsoft.Extensions.Time.Testing;

namespace Geo.Replicator.Tests;

/// <summary>
/// A sender writes its acknowledged checkpoint at most once per interval, and always the last one (a unit test of
/// <see cref="StreamSender"/> on a stream that only records its checkpoint writes).
/// </summary>
public sealed class CheckpointWriteTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Acknowledgements_within_an_interval_share_one_checkpoint_write_and_the_last_is_written_when_the_session_ends()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var stream = new RecordingStream();
        var options = new ReplicatorOptions { CheckpointInterval = TimeSpan.FromMilliseconds(200) };
        var sender = new StreamSender(stream, "us-west", checkpoint: 10, options, time, new PeerState("us-west", time.GetUtcNow()));
        using var session = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var persisting = sender.PersistCheckpointsAsync(session.Token);

        sender.OnAck(Ack(11));
        await WaitForAsync(() => stream.Written.Count == 1); // the first after a quiet spell: at once
        Assert.Equal([11L], stream.Written);

        for (var seq = 12; seq <= 20; seq++)
        {
            sender.OnAck(Ack(seq));
        }

        sender.OnAck(Ack(15)); // a late, smaller acknowledgement moves nothing
        await Task.Delay(100, Ct);
        Assert.Equal([11L], stream.Written); // within the interval: none of them written yet

        await WaitForAsync(() =>
        {
            time.Advance(TimeSpan.FromMilliseconds(50));
            return stream.Written.Count == 2;
        });
        Assert.Equal([11L, 20L], stream.Written); // one write for the nine acknowledgements

        sender.OnAck(Ack(25));
        await session.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => persisting);
        Assert.Equal(25L, stream.Written[^1]); // the session's last acknowledgement survives its end
        Assert.Equal(25L, sender.Durable);
    }

    private static Ack Ack(long seq) => new() { Stream = RecordingStream.StreamName, AppliedThrough = seq, BatchLastSeq = seq };

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(10, Ct);
        }
    }

    private sealed class RecordingStream : IChangeStream
    {
        public const string StreamName = "us-east-0";

        private readonly ConcurrentQueue<long> _written = new();

        public List<long> Written => [.. _written];

        public string Name => StreamName;

        public ChangeSignal? Signal => null;

        public Task<long> GetCheckpointAsync(string peer, CancellationToken ct) => Task.FromResult(0L);

        public Task SetCheckpointAsync(string peer, long seq, CancellationToken ct)
        {
            _written.Enqueue(seq);
            return Task.CompletedTask;
        }

        public Task<StreamRead> ReadAsync(string peer, long afterSeq, int limit, int maxBytes, CancellationToken ct) => Task.FromResult(new StreamRead(null, AtTail: true));

        public Task<long> PendingAsync(long afterSeq, CancellationToken ct) => Task.FromResult(0L);
    }
}
