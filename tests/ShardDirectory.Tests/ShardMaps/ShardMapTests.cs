using Geo.Contracts.Directory;
using Geo.Core.Placement;
using Geo.Testing;
using Grpc.Core;
using ShardMap = Geo.Contracts.Directory.ShardMap;

namespace Geo.ShardDirectory.Tests.ShardMaps;

public sealed class ShardMapTests(PostgresServer postgres) : IAsyncLifetime
{
    private DirectoryHost _host = null!;
    private string _database = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _database = await postgres.CreateDatabaseAsync("dir_maps", Ct);
        _host = await DirectoryHost.StartAsync(_database);
    }

    public async ValueTask DisposeAsync()
    {
        _host.AssertNoErrors();
        await _host.DisposeAsync();
    }

    [Fact]
    public async Task The_initial_map_spreads_buckets_evenly_over_the_regions_shards()
    {
        var map = await _host.Client.GetShardMapAsync(new GetShardMapRequest { Region = "eu-west" }, cancellationToken: Ct);
        Assert.Equal(("eu-west", 1L), (map.Region, map.Epoch));
        Assert.Equal(["eu-west-0", "eu-west-1"], map.Shards);
        Assert.Equal(Buckets.Count, map.OwnerIndex.Count);
        Assert.Equal([2048, 2048], map.OwnerIndex.GroupBy(i => i).OrderBy(g => g.Key).Select(g => g.Count()));
        Assert.Empty(map.FencedBuckets);
        Assert.Empty(map.Moves);

        // Empty region means the directory's own; another region is not held here.
        Assert.Equal(map, await _host.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct));
        var other = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.GetShardMapAsync(new GetShardMapRequest { Region = "us-east" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task A_restart_keeps_the_map_instead_of_recreating_it()
    {
        var moved = await MoveAsync("restart-1", [0, 2], "eu-west-1");
        await _host.DisposeAsync();
        _host = await DirectoryHost.StartAsync(_database);
        var map = await _host.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct);
        Assert.Equal(moved, map.Epoch);
        Assert.Equal("eu-west-1", ShardMapSnapshot.FromProto(map).Map.ShardOf(2));
    }

    [Fact]
    public async Task A_watcher_receives_every_epoch_of_a_move_in_order()
    {
        using var watch = _host.Client.WatchShardMap(new WatchShardMapRequest { Region = "eu-west" }, cancellationToken: Ct);
        var first = await NextMapAsync(watch);
        Assert.Equal(1, first.Epoch);

        var begun = await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "m1", ExpectedEpoch = 1, Buckets = { 4, 0, 2 }, TargetShard = "eu-west-1" }, cancellationToken: Ct);
        Assert.Equal((MovePhase.Begun, 1L, true, "eu-west-0"), (begun.Move.Phase, begun.Epoch, begun.Changed, begun.Move.SourceShard));
        Assert.Equal([0, 2, 4], begun.Move.Buckets);
        var withMove = await _host.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct);
        Assert.Equal(("m1", 1L), (withMove.Moves.Single().MoveId, withMove.Epoch));

        var fenced = await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "m1", ExpectedEpoch = 1 }, cancellationToken: Ct);
        Assert.Equal((MovePhase.Fenced, 2L, 2L), (fenced.Move.Phase, fenced.Epoch, fenced.Move.FencedEpoch));
        var second = await NextMapAsync(watch);
        Assert.Equal(2, second.Epoch);
        Assert.Equal([0, 2, 4], second.FencedBuckets);
        Assert.Equal("eu-west-0", ShardMapSnapshot.FromProto(second).Map.ShardOf(2));

        var flipped = await _host.Client.FlipMoveAsync(new MoveStepRequest { MoveId = "m1", ExpectedEpoch = 2 }, cancellationToken: Ct);
        Assert.Equal((MovePhase.Flipped, 3L), (flipped.Move.Phase, flipped.Epoch));
        var third = await NextMapAsync(watch);
        Assert.Equal(3, third.Epoch);
        Assert.Empty(third.FencedBuckets);
        var snapshot = ShardMapSnapshot.FromProto(third);
        Assert.All(new[] { 0, 2, 4 }, b => Assert.Equal("eu-west-1", snapshot.Map.ShardOf(b)));
        Assert.Equal("eu-west-0", snapshot.Map.ShardOf(6));
        Assert.Equal(2045, snapshot.Map.BucketCounts()["eu-west-0"]);

        var completed = await _host.Client.CompleteMoveAsync(new MoveStepRequest { MoveId = "m1", ExpectedEpoch = 3 }, cancellationToken: Ct);
        Assert.Equal((MovePhase.Completed, 3L), (completed.Move.Phase, completed.Epoch));
        Assert.Empty((await _host.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct)).Moves);
    }

    [Fact]
    public async Task A_watcher_that_knows_an_old_epoch_gets_each_missed_epoch_then_heartbeats()
    {
        await MoveAsync("history", [10, 12], "eu-west-1");
        using var watch = _host.Client.WatchShardMap(new WatchShardMapRequest { KnownEpoch = 1 }, cancellationToken: Ct);
        Assert.Equal(2, (await NextMapAsync(watch)).Epoch);
        Assert.Equal(3, (await NextMapAsync(watch)).Epoch);
        Assert.True(await watch.ResponseStream.MoveNext(Ct));
        Assert.Equal(new Heartbeat { Epoch = 3, IntervalMs = 1000, ServerTimeUnixMs = watch.ResponseStream.Current.Heartbeat.ServerTimeUnixMs }, watch.ResponseStream.Current.Heartbeat);
    }

    [Fact]
    public async Task Steps_against_a_stale_epoch_are_refused()
    {
        var staleBegin = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "s0", ExpectedEpoch = 7, Buckets = { 1 }, TargetShard = "eu-west-0" }, cancellationToken: Ct));
        Assert.Equal((StatusCode.FailedPrecondition, "stale epoch 7, current 1"), (staleBegin.StatusCode, staleBegin.Status.Detail));

        await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "a", ExpectedEpoch = 1, Buckets = { 0 }, TargetShard = "eu-west-1" }, cancellationToken: Ct);
        await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "b", ExpectedEpoch = 1, Buckets = { 1 }, TargetShard = "eu-west-0" }, cancellationToken: Ct);
        await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "a", ExpectedEpoch = 1 }, cancellationToken: Ct);

        // Move b planned against epoch 1; the map is at 2 now.
        var stale = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "b", ExpectedEpoch = 1 }, cancellationToken: Ct));
        Assert.Equal((StatusCode.FailedPrecondition, "stale epoch 1, current 2"), (stale.StatusCode, stale.Status.Detail));
        var map = await _host.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct);
        Assert.Equal(2, map.Epoch);
        Assert.Equal([0], map.FencedBuckets);
        await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "b", ExpectedEpoch = 2 }, cancellationToken: Ct);
    }

    [Fact]
    public async Task Repeating_a_step_that_happened_returns_the_current_state_without_a_change()
    {
        var begin = new BeginMoveRequest { MoveId = "r", ExpectedEpoch = 1, Buckets = { 3, 5 }, TargetShard = "eu-west-0" };
        await _host.Client.BeginMoveAsync(begin, cancellationToken: Ct);
        var beginAgain = await _host.Client.BeginMoveAsync(begin, cancellationToken: Ct);
        Assert.False(beginAgain.Changed);

        var other = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "r", ExpectedEpoch = 1, Buckets = { 3 }, TargetShard = "eu-west-0" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.AlreadyExists, other.StatusCode);

        await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "r", ExpectedEpoch = 1 }, cancellationToken: Ct);
        var fenceAgain = await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "r", ExpectedEpoch = 1 }, cancellationToken: Ct);
        Assert.Equal((false, 2L, MovePhase.Fenced), (fenceAgain.Changed, fenceAgain.Epoch, fenceAgain.Move.Phase));

        await _host.Client.FlipMoveAsync(new MoveStepRequest { MoveId = "r", ExpectedEpoch = 2 }, cancellationToken: Ct);
        var flipAgain = await _host.Client.FlipMoveAsync(new MoveStepRequest { MoveId = "r", ExpectedEpoch = 2 }, cancellationToken: Ct);
        var fenceAfterFlip = await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "r", ExpectedEpoch = 2 }, cancellationToken: Ct);
        Assert.Equal((false, 3L, MovePhase.Flipped), (flipAgain.Changed, flipAgain.Epoch, flipAgain.Move.Phase));
        Assert.False(fenceAfterFlip.Changed);

        await _host.Client.CompleteMoveAsync(new MoveStepRequest { MoveId = "r", ExpectedEpoch = 3 }, cancellationToken: Ct);
        var completeAgain = await _host.Client.CompleteMoveAsync(new MoveStepRequest { MoveId = "r", ExpectedEpoch = 3 }, cancellationToken: Ct);
        Assert.Equal((false, MovePhase.Completed), (completeAgain.Changed, completeAgain.Move.Phase));

        var history = await HistoryEpochsAsync();
        Assert.Equal([1L, 2L, 3L], history);
    }

    [Fact]
    public async Task Cancel_clears_the_fence_before_the_flip_and_is_refused_after_it()
    {
        await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "c1", ExpectedEpoch = 1, Buckets = { 8 }, TargetShard = "eu-west-1" }, cancellationToken: Ct);
        await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "c1", ExpectedEpoch = 1 }, cancellationToken: Ct);
        var cancelled = await _host.Client.CancelMoveAsync(new MoveStepRequest { MoveId = "c1", ExpectedEpoch = 2 }, cancellationToken: Ct);
        Assert.Equal((MovePhase.Cancelled, 3L, true), (cancelled.Move.Phase, cancelled.Epoch, cancelled.Changed));
        var map = await _host.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct);
        Assert.Empty(map.FencedBuckets);
        Assert.Equal("eu-west-0", ShardMapSnapshot.FromProto(map).Map.ShardOf(8));
        Assert.False((await _host.Client.CancelMoveAsync(new MoveStepRequest { MoveId = "c1", ExpectedEpoch = 3 }, cancellationToken: Ct)).Changed);
        var flipCancelled = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.FlipMoveAsync(new MoveStepRequest { MoveId = "c1", ExpectedEpoch = 3 }, cancellationToken: Ct));
        Assert.Equal(StatusCode.FailedPrecondition, flipCancelled.StatusCode);

        await MoveAsync("c2", [8], "eu-west-1", complete: false);
        var late = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.CancelMoveAsync(new MoveStepRequest { MoveId = "c2", ExpectedEpoch = 5 }, cancellationToken: Ct));
        Assert.Equal(StatusCode.FailedPrecondition, late.StatusCode);
        Assert.Contains("before the flip", late.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(MovePhase.Flipped, (await _host.Client.GetMoveAsync(new GetMoveRequest { MoveId = "c2" }, cancellationToken: Ct)).Move.Phase);
    }

    [Fact]
    public async Task A_move_needs_one_source_free_buckets_and_a_known_target()
    {
        var mixed = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "x", ExpectedEpoch = 1, Buckets = { 0, 1 }, TargetShard = "eu-west-1" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.FailedPrecondition, mixed.StatusCode);
        var unknownTarget = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "x", ExpectedEpoch = 1, Buckets = { 0 }, TargetShard = "us-east-0" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.InvalidArgument, unknownTarget.StatusCode);
        var badBucket = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "x", ExpectedEpoch = 1, Buckets = { 4096 }, TargetShard = "eu-west-1" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.InvalidArgument, badBucket.StatusCode);

        await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "y", ExpectedEpoch = 1, Buckets = { 0, 2 }, TargetShard = "eu-west-1" }, cancellationToken: Ct);
        var overlap = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "z", ExpectedEpoch = 1, Buckets = { 2, 4 }, TargetShard = "eu-west-1" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.FailedPrecondition, overlap.StatusCode);
        Assert.Contains("'y'", overlap.Status.Detail, StringComparison.Ordinal);
        var unknownMove = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "nope", ExpectedEpoch = 1 }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, unknownMove.StatusCode);
    }

    [Fact]
    public async Task Changes_made_by_a_second_directory_process_reach_watchers_of_the_first_through_notify()
    {
        // Polling is pushed out of the picture: only LISTEN/NOTIFY can deliver the change in time.
        await _host.DisposeAsync();
        _host = await DirectoryHost.StartAsync(_database, settings: new Dictionary<string, string?> { ["Directory:MapPollInterval"] = "01:00:00" });
        await using var second = await DirectoryHost.StartAsync(_database, settings: new Dictionary<string, string?> { ["Directory:MapPollInterval"] = "01:00:00" });
        using var watch = _host.Client.WatchShardMap(new WatchShardMapRequest(), cancellationToken: Ct);
        Assert.Equal(1, (await NextMapAsync(watch)).Epoch);

        await second.Client.BeginMoveAsync(new BeginMoveRequest { MoveId = "p2", ExpectedEpoch = 1, Buckets = { 7 }, TargetShard = "eu-west-0" }, cancellationToken: Ct);
        await second.Client.FenceMoveAsync(new MoveStepRequest { MoveId = "p2", ExpectedEpoch = 1 }, cancellationToken: Ct);
        var fenced = await NextMapAsync(watch);
        Assert.Equal((2L, 7), (fenced.Epoch, fenced.FencedBuckets.Single()));
        await second.Client.FlipMoveAsync(new MoveStepRequest { MoveId = "p2", ExpectedEpoch = 2 }, cancellationToken: Ct);
        var flipped = await NextMapAsync(watch);
        Assert.Equal(3, flipped.Epoch);
        Assert.Equal("eu-west-0", ShardMapSnapshot.FromProto(flipped).Map.ShardOf(7));
        second.AssertNoErrors();
    }

    private async Task<long> MoveAsync(string id, int[] buckets, string target, bool complete = true)
    {
        var epoch = (await _host.Client.GetShardMapAsync(new GetShardMapRequest(), cancellationToken: Ct)).Epoch;
        var begin = new BeginMoveRequest { MoveId = id, ExpectedEpoch = epoch, TargetShard = target };
        begin.Buckets.Add(buckets);
        await _host.Client.BeginMoveAsync(begin, cancellationToken: Ct);
        epoch = (await _host.Client.FenceMoveAsync(new MoveStepRequest { MoveId = id, ExpectedEpoch = epoch }, cancellationToken: Ct)).Epoch;
        epoch = (await _host.Client.FlipMoveAsync(new MoveStepRequest { MoveId = id, ExpectedEpoch = epoch }, cancellationToken: Ct)).Epoch;
        if (complete)
        {
            await _host.Client.CompleteMoveAsync(new MoveStepRequest { MoveId = id, ExpectedEpoch = epoch }, cancellationToken: Ct);
        }

        return epoch;
    }

    /// <summary>The next map on the stream, skipping heartbeats; fails after 10 s.</summary>
    private static async Task<ShardMap> NextMapAsync(AsyncServerStreamingCall<ShardMapEvent> watch)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        while (await watch.ResponseStream.MoveNext(timeout.Token))
        {
            if (watch.ResponseStream.Current.Map is { } map)
            {
                return map;
            }
        }

        throw new InvalidOperationException("the watch stream ended");
    }

    private async Task<long[]> HistoryEpochsAsync()
    {
        await using var connection = new Npgsql.NpgsqlConnection(_database);
        await connection.OpenAsync(Ct);
        await using var command = new Npgsql.NpgsqlCommand("SELECT epoch FROM shard_map_history WHERE region = 'eu-west' ORDER BY epoch", connection);
        var epochs = new List<long>();
        await using var reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            epochs.Add(reader.GetInt64(0));
        }

        return [.. epochs];
    }
}
