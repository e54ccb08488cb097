using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace Geo.Storage.Tests;

public sealed class IdempotencyTests(ShardDatabase db) : IClassFixture<ShardDatabase>
{
    private static readonly TimeSpan Day = TimeSpan.FromHours(24);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Same_key_and_payload_replays_the_stored_response_other_payload_mismatches()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var hash = Hash("PUT /docs/a {1}");

        var begin = await store.BeginIdempotentAsync(user, "key-1", hash, Day, Ct);
        Assert.Equal(IdempotencyOutcome.New, begin.Outcome);
        Assert.Equal(IdempotencyOutcome.InFlight, (await store.BeginIdempotentAsync(user, "key-1", hash, Day, Ct)).Outcome);
        var put = await store.PutDocumentAsync(user, "docs", "a", "{}", idempotency: Respond(begin.Claim!), ct: Ct);

        var replay = await store.BeginIdempotentAsync(user, "key-1", hash, Day, Ct);
        Assert.Equal(IdempotencyOutcome.Replay, replay.Outcome);
        Assert.Equal(201, replay.Response!.Status);
        Assert.Equal($$"""{"version":"{{put.Version}}"}""", replay.Response.Body);
        Assert.Equal(put.Version!.Value.ToETag(), replay.Response.Headers["ETag"]);
        Assert.Equal(IdempotencyOutcome.Mismatch, (await store.BeginIdempotentAsync(user, "key-1", Hash("PUT /docs/a {2}"), Day, Ct)).Outcome);
        Assert.Equal(IdempotencyOutcome.New, (await store.BeginIdempotentAsync(ShardDatabase.NewUserId(), "key-1", hash, Day, Ct)).Outcome); // keys are per user
    }

    [Fact]
    public async Task Twenty_parallel_identical_requests_write_exactly_once()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var hash = Hash("POST /counters/c {1}");

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Task.Run(async () =>
        {
            var begin = await store.BeginIdempotentAsync(user, "once", hash, Day, Ct);
            if (begin.Outcome == IdempotencyOutcome.New)
            {
                await store.PutDocumentAsync(user, "docs", "once", """{"x":1}""", idempotency: Respond(begin.Claim!), ct: Ct);
            }

            return begin.Outcome;
        }, Ct)));

        Assert.Single(outcomes, o => o == IdempotencyOutcome.New);
        Assert.All(outcomes, o => Assert.Contains(o, new[] { IdempotencyOutcome.New, IdempotencyOutcome.InFlight, IdempotencyOutcome.Replay }));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM documents WHERE user_id = @user", new { user }));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM change_log WHERE user_id = @user", new { user }));
        Assert.Equal(IdempotencyOutcome.Replay, (await store.BeginIdempotentAsync(user, "once", hash, Day, Ct)).Outcome);
    }

    [Fact]
    public async Task An_abandoned_claim_lets_a_retry_run_and_a_lost_claim_rolls_the_write_back()
    {
        var store = db.Store();
        var user = ShardDatabase.NewUserId();
        var hash = Hash("x");
        var first = await store.BeginIdempotentAsync(user, "k", hash, Day, Ct);

        await store.AbandonIdempotentAsync(first.Claim!, Ct);
        var retry = await store.BeginIdempotentAsync(user, "k", hash, Day, Ct);

        Assert.Equal(IdempotencyOutcome.New, retry.Outcome);
        await Assert.ThrowsAsync<IdempotencyClaimLostException>(() => store.IncrementCounterAsync(user, "c", 5, new IdempotencyContext<long>(first.Claim!, v => new(200, $"{v}", new Dictionary<string, string>())), Ct));
        Assert.Equal(0, await store.GetCounterAsync(user, "c", Ct));
        Assert.Equal(5, await store.IncrementCounterAsync(user, "c", 5, new IdempotencyContext<long>(retry.Claim!, v => new(200, $"{v}", new Dictionary<string, string>())), Ct));
        Assert.Equal("5", (await store.BeginIdempotentAsync(user, "k", hash, Day, Ct)).Response!.Body);
    }

    [Fact]
    public async Task Expired_records_count_as_absent_and_are_purged()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = db.Store(time: time);
        var user = ShardDatabase.NewUserId();
        var begin = await store.BeginIdempotentAsync(user, "k", Hash("a"), TimeSpan.FromHours(1), Ct);
        await store.PutDocumentAsync(user, "docs", "a", "{}", idempotency: Respond(begin.Claim!), ct: Ct);

        time.Advance(TimeSpan.FromMinutes(59));
        Assert.Equal(IdempotencyOutcome.Mismatch, (await store.BeginIdempotentAsync(user, "k", Hash("b"), TimeSpan.FromHours(1), Ct)).Outcome);
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(IdempotencyOutcome.New, (await store.BeginIdempotentAsync(user, "k", Hash("b"), TimeSpan.FromHours(1), Ct)).Outcome);

        var other = ShardDatabase.NewUserId();
        await store.BeginIdempotentAsync(other, "k", Hash("a"), TimeSpan.FromMinutes(5), Ct);
        time.Advance(TimeSpan.FromMinutes(6));
        Assert.True(await store.PurgeExpiredIdempotencyAsync(Ct) >= 1);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM idempotency WHERE user_id = @other", new { other }));
    }

    [Fact]
    public async Task An_in_flight_claim_whose_request_died_is_taken_over_after_the_lease()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = db.Store(time: time);
        var user = ShardDatabase.NewUserId();
        var stuck = await store.BeginIdempotentAsync(user, "k", Hash("a"), Day, Ct);

        time.Advance(ShardStore.DefaultInFlightLease - TimeSpan.FromSeconds(1));
        Assert.Equal(IdempotencyOutcome.InFlight, (await store.BeginIdempotentAsync(user, "k", Hash("a"), Day, Ct)).Outcome);
        time.Advance(TimeSpan.FromSeconds(2));
        var takeover = await store.BeginIdempotentAsync(user, "k", Hash("a"), Day, Ct);

        Assert.Equal(IdempotencyOutcome.New, takeover.Outcome);
        Assert.NotEqual(stuck.Claim!.Token, takeover.Claim!.Token);
    }

    private static byte[] Hash(string request) => SHA256.HashData(Encoding.UTF8.GetBytes(request));

    private static IdempotencyContext<DocumentWriteResult> Respond(IdempotencyClaim claim) => new(claim, result => new IdempotentResponse(
        result.Outcome == DocumentWriteOutcome.Created ? 201 : 200,
        $$"""{"version":"{{result.Version}}"}""",
        new Dictionary<string, string> { ["ETag"] = result.Version!.Value.ToETag() }));
}
