using Geo.Contracts.Directory;
using Geo.Testing;
using Grpc.Core;

namespace Geo.ShardDirectory.Tests.Users;

public sealed class UserTests(PostgresServer postgres) : IAsyncLifetime
{
    private DirectoryHost _host = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => _host = await DirectoryHost.StartAsync(await postgres.CreateDatabaseAsync("dir_users", Ct));

    public async ValueTask DisposeAsync()
    {
        _host.AssertNoErrors();
        await _host.DisposeAsync();
    }

    [Fact]
    public async Task Created_users_can_be_read_listed_in_pages_and_erased()
    {
        var ids = Enumerable.Range(0, 5).Select(_ => NewId()).Order(StringComparer.Ordinal).ToArray();
        foreach (var id in ids)
        {
            var created = await _host.Client.CreateUserAsync(new CreateUserRequest { UserId = id, Residency = "eu", HomeRegion = "eu-central" }, cancellationToken: Ct);
            Assert.Equal("eu-west", created.Version.Origin);
            Assert.True(created.Version.Hlc > 0);
        }

        var got = await _host.Client.GetUserAsync(new GetUserRequest { UserId = ids[2] }, cancellationToken: Ct);
        Assert.Equal(("eu", "eu-central", false), (got.Residency, got.HomeRegion, got.Deleted));

        var pages = new List<string[]>();
        var token = string.Empty;
        do
        {
            var page = await _host.Client.ListUsersAsync(new ListUsersRequest { PageSize = 2, PageToken = token }, cancellationToken: Ct);
            pages.Add([.. page.Users.Select(u => u.UserId)]);
            token = page.NextPageToken;
        }
        while (token.Length > 0);
        Assert.Equal([2, 2, 1], pages.Select(p => p.Length));
        Assert.Equal(ids, pages.SelectMany(p => p));

        var tombstone = await _host.Client.EraseUserAsync(new EraseUserRequest { UserId = ids[2] }, cancellationToken: Ct);
        Assert.True(tombstone.Deleted);
        Assert.True(tombstone.Version.Hlc > got.Version.Hlc);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.GetUserAsync(new GetUserRequest { UserId = ids[2] }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        var live = await _host.Client.ListUsersAsync(new ListUsersRequest(), cancellationToken: Ct);
        Assert.DoesNotContain(ids[2], live.Users.Select(u => u.UserId));
        var all = await _host.Client.ListUsersAsync(new ListUsersRequest { IncludeErased = true }, cancellationToken: Ct);
        Assert.Contains(all.Users, u => u.UserId == ids[2] && u.Deleted);

        // Erasing again changes nothing: same tombstone version.
        var again = await _host.Client.EraseUserAsync(new EraseUserRequest { UserId = ids[2] }, cancellationToken: Ct);
        Assert.Equal(tombstone.Version, again.Version);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.EraseUserAsync(new EraseUserRequest { UserId = NewId() }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    [Theory]
    [InlineData("mars", "eu-west", StatusCode.InvalidArgument)]
    [InlineData("", "eu-west", StatusCode.InvalidArgument)]
    [InlineData("eu", "us-east", StatusCode.FailedPrecondition)]
    [InlineData("us", "eu-central", StatusCode.FailedPrecondition)]
    [InlineData("eu", "atlantis", StatusCode.InvalidArgument)]
    public async Task Create_refuses_an_unknown_residency_or_a_home_region_outside_it(string residency, string homeRegion, StatusCode expected)
    {
        var id = NewId();
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.CreateUserAsync(new CreateUserRequest { UserId = id, Residency = residency, HomeRegion = homeRegion }, cancellationToken: Ct));
        Assert.Equal(expected, error.StatusCode);
        var lookup = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.GetUserAsync(new GetUserRequest { UserId = id }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, lookup.StatusCode);
    }

    [Theory]
    [InlineData("not-a-uuid")]
    [InlineData("0190F5F4-5A1E-7CC4-9B8E-2F1F3C7D9A10")]
    [InlineData("{0190f5f4-5a1e-7cc4-9b8e-2f1f3c7d9a10}")]
    public async Task Create_refuses_ids_that_are_not_canonical_uuids(string userId)
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.CreateUserAsync(new CreateUserRequest { UserId = userId, Residency = "eu", HomeRegion = "eu-west" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Fact]
    public async Task Global_users_may_live_in_any_region()
    {
        var created = await _host.Client.CreateUserAsync(new CreateUserRequest { UserId = NewId(), Residency = "global", HomeRegion = "us-west" }, cancellationToken: Ct);
        Assert.Equal("us-west", created.HomeRegion);
    }

    [Fact]
    public async Task Create_is_idempotent_for_the_same_payload_and_conflicts_for_another()
    {
        var id = NewId();
        var request = new CreateUserRequest { UserId = id, Residency = "eu", HomeRegion = "eu-west" };
        var first = await _host.Client.CreateUserAsync(request, cancellationToken: Ct);
        var second = await _host.Client.CreateUserAsync(request, cancellationToken: Ct);
        Assert.Equal(first, second);

        var other = await Assert.ThrowsAsync<RpcException>(async () =>
            await _host.Client.CreateUserAsync(new CreateUserRequest { UserId = id, Residency = "eu", HomeRegion = "eu-central" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.AlreadyExists, other.StatusCode);

        await _host.Client.EraseUserAsync(new EraseUserRequest { UserId = id }, cancellationToken: Ct);
        var reuse = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.CreateUserAsync(request, cancellationToken: Ct));
        Assert.Equal(StatusCode.AlreadyExists, reuse.StatusCode);
    }

    [Fact]
    public async Task Concurrent_identical_creates_store_one_entry()
    {
        var request = new CreateUserRequest { UserId = NewId(), Residency = "eu", HomeRegion = "eu-west" };
        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => _host.Client.CreateUserAsync(request, cancellationToken: Ct).ResponseAsync));
        Assert.Single(results.Select(r => r.Version).Distinct());
    }

    [Fact]
    public async Task Replicated_entries_apply_only_when_newer()
    {
        var id = NewId();
        var v2 = Entry(id, "eu-central", 2_000, "eu-central");
        var apply = await Apply(v2);
        Assert.Equal([true], apply.Applied);
        Assert.Equal(v2, await Get(id));

        // Older loses, even from a region that sorts later.
        Assert.Equal([false], (await Apply(Entry(id, "eu-west", 1_000, "zz-region"))).Applied);
        Assert.Equal(v2, await Get(id));

        // Same hlc, greater origin wins; the same entry twice is a no-op.
        var v3 = Entry(id, "eu-west", 2_000, "eu-west");
        Assert.Equal([true], (await Apply(v3)).Applied);
        Assert.Equal([false], (await Apply(v3)).Applied);
        Assert.Equal(v3, await Get(id));

        // A newer tombstone erases; GetUser (cached a moment ago) answers NOT_FOUND at once.
        var erased = Entry(id, "eu-west", 3_000, "eu-central");
        erased.Deleted = true;
        Assert.Equal([true], (await Apply(erased)).Applied);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await Get(id));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Within_one_batch_only_the_greatest_version_of_an_id_applies()
    {
        var id = NewId();
        var response = await Apply(Entry(id, "eu-west", 5_000, "eu-west"), Entry(id, "eu-central", 9_000, "eu-west"), Entry(id, "eu-west", 7_000, "eu-west"));
        Assert.Equal([false, true, false], response.Applied);
        Assert.Equal("eu-central", (await Get(id)).HomeRegion);
    }

    [Fact]
    public async Task Entries_far_in_the_future_are_quarantined_not_applied()
    {
        var id = NewId();
        var future = Entry(id, "eu-west", 0, "eu-central");
        future.Version.Hlc = DateTimeOffset.UtcNow.AddDays(1).ToUnixTimeMilliseconds() << 16;
        var response = await Apply(future);
        Assert.Equal([false], response.Applied);
        Assert.Equal([0], response.Quarantined);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await Get(id));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Malformed_replicated_entries_are_refused_as_a_batch()
    {
        var good = Entry(NewId(), "eu-west", 1_000, "eu-west");
        var noVersion = new UserEntry { UserId = NewId(), Residency = "eu", HomeRegion = "eu-west" };
        var error = await Assert.ThrowsAsync<RpcException>(async () => await Apply(good, noVersion));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("entries[1].version", error.Status.Detail, StringComparison.Ordinal);
        await Assert.ThrowsAsync<RpcException>(async () => await Get(good.UserId));
    }

    [Fact]
    public async Task Changes_are_read_in_sequence_with_a_resumable_cursor_and_an_origin_filter()
    {
        var local = await _host.Client.CreateUserAsync(new CreateUserRequest { UserId = NewId(), Residency = "eu", HomeRegion = "eu-west" }, cancellationToken: Ct);
        var remote = Entry(NewId(), "eu-central", 1_000, "eu-central");
        await Apply(remote);
        await _host.Client.EraseUserAsync(new EraseUserRequest { UserId = local.UserId }, cancellationToken: Ct);

        // The erased entry moved to the end: readers see the latest state of every changed entry.
        var all = await _host.Client.ReadUserChangesAsync(new ReadUserChangesRequest { AfterSeq = 0, Limit = 10 }, cancellationToken: Ct);
        Assert.Equal([remote.UserId, local.UserId], all.Changes.Select(c => c.Entry.UserId));
        Assert.True(all.Changes[1].Entry.Deleted);
        Assert.Equal(all.Changes[1].Seq, all.NextAfterSeq);

        var first = await _host.Client.ReadUserChangesAsync(new ReadUserChangesRequest { AfterSeq = 0, Limit = 1 }, cancellationToken: Ct);
        var rest = await _host.Client.ReadUserChangesAsync(new ReadUserChangesRequest { AfterSeq = first.NextAfterSeq, Limit = 10 }, cancellationToken: Ct);
        Assert.Equal(all.Changes, first.Changes.Concat(rest.Changes));

        var ours = await _host.Client.ReadUserChangesAsync(new ReadUserChangesRequest { Origin = "eu-west" }, cancellationToken: Ct);
        Assert.Equal([local.UserId], ours.Changes.Select(c => c.Entry.UserId));
        Assert.Equal(all.NextAfterSeq, ours.NextAfterSeq);
        var nothingNew = await _host.Client.ReadUserChangesAsync(new ReadUserChangesRequest { AfterSeq = ours.NextAfterSeq }, cancellationToken: Ct);
        Assert.Empty(nothingNew.Changes);
        Assert.Equal(ours.NextAfterSeq, nothingNew.NextAfterSeq);
    }

    [Fact]
    public async Task WatchUserChanges_pulses_once_at_the_start_then_only_when_an_entry_changed_with_heartbeats_between()
    {
        await using var host = await DirectoryHost.StartAsync(await postgres.CreateDatabaseAsync("dir_watch", Ct),
            settings: new Dictionary<string, string?> { ["Directory:HeartbeatInterval"] = "00:00:01" });
        using var watch = host.Client.WatchUserChanges(new WatchUserChangesRequest(), cancellationToken: Ct);
        async Task<UserChangesEvent.KindOneofCase> NextAsync()
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(20));
            Assert.True(await watch.ResponseStream.MoveNext(timeout.Token), "the watch ended");
            return watch.ResponseStream.Current.KindCase;
        }

        Assert.Equal(UserChangesEvent.KindOneofCase.Changed, await NextAsync()); // whatever changed before the watch began
        // Quiet: heartbeats only (a pulse here would mean the watch pulses on a timer, which is polling again).
        var first = await NextAsync();
        var second = await NextAsync();
        Assert.Equal((UserChangesEvent.KindOneofCase.Heartbeat, UserChangesEvent.KindOneofCase.Heartbeat), (first, second));

        await host.Client.CreateUserAsync(new CreateUserRequest { UserId = NewId(), Residency = "eu", HomeRegion = "eu-west" }, cancellationToken: Ct);
        var next = await NextAsync();
        if (next == UserChangesEvent.KindOneofCase.Heartbeat)
        {
            next = await NextAsync(); // one heartbeat may have been on its way when the entry changed
        }

        Assert.Equal(UserChangesEvent.KindOneofCase.Changed, next);
        host.AssertNoErrors();
    }

    [Fact]
    public async Task Page_sizes_above_1000_are_refused()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await _host.Client.ListUsersAsync(new ListUsersRequest { PageSize = 1001 }, cancellationToken: Ct));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    internal static string NewId() => Guid.CreateVersion7().ToString("D");

    private static UserEntry Entry(string id, string homeRegion, long hlcMs, string origin) => new()
    {
        UserId = id,
        Residency = "eu",
        HomeRegion = homeRegion,
        Version = new EntryVersion { Hlc = hlcMs << 16, Origin = origin },
    };

    private async Task<ApplyUserEntriesResponse> Apply(params UserEntry[] entries)
    {
        var request = new ApplyUserEntriesRequest();
        request.Entries.Add(entries);
        return await _host.Client.ApplyUserEntriesAsync(request, cancellationToken: Ct);
    }

    private async Task<UserEntry> Get(string id) => await _host.Client.GetUserAsync(new GetUserRequest { UserId = id }, cancellationToken: Ct);
}
