namespace Geo.Storage.Tests;

/// <summary>Counters at the edge of 64 bits, listing pages bounded in bytes, and RFC 9110 write preconditions.</summary>
public sealed class BoundsTests(TwoRegions regions) : IClassFixture<TwoRegions>
{
    private readonly ShardStore _east = regions.East.Store("us-east");
    private readonly ShardStore _west = regions.West.Store("us-west");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_increment_past_64_bits_is_refused_and_changes_nothing()
    {
        var user = ShardDatabase.NewUserId();
        Assert.Equal(long.MaxValue, await _east.IncrementCounterAsync(user, "c", long.MaxValue, ct: Ct));
        var changes = await _east.ReadChangesAsync(0, 100_000, "us-east", ct: Ct);

        await Assert.ThrowsAsync<CounterOverflowException>(() => _east.IncrementCounterAsync(user, "c", long.MaxValue, ct: Ct));
        await Assert.ThrowsAsync<CounterOverflowException>(() => _east.IncrementCounterAsync(user, "c", 1, ct: Ct));

        Assert.Equal(long.MaxValue, await _east.GetCounterAsync(user, "c", Ct));
        Assert.Equal(changes.Count, (await _east.ReadChangesAsync(0, 100_000, "us-east", ct: Ct)).Count);
        Assert.Equal(long.MaxValue - 5, await _east.IncrementCounterAsync(user, "c", -5, ct: Ct));
    }

    [Fact]
    public async Task Components_that_overflow_together_saturate_the_value_the_same_way_in_both_regions()
    {
        var user = ShardDatabase.NewUserId();

        // Each region accepts one increment of long.MaxValue (each alone is in range): the exact sum is 2^64 - 2.
        Assert.Equal(long.MaxValue, await _east.IncrementCounterAsync(user, "c", long.MaxValue, ct: Ct));
        Assert.Equal(long.MaxValue, await _west.IncrementCounterAsync(user, "c", long.MaxValue, ct: Ct));
        await ExchangeAsync(user);

        Assert.Equal(long.MaxValue, await _east.GetCounterAsync(user, "c", Ct));
        Assert.Equal(long.MaxValue, await _west.GetCounterAsync(user, "c", Ct));

        // Further up is refused in both; back down is accepted and stays saturated until the exact value is in range.
        await Assert.ThrowsAsync<CounterOverflowException>(() => _east.IncrementCounterAsync(user, "c", 1, ct: Ct));
        await Assert.ThrowsAsync<CounterOverflowException>(() => _west.IncrementCounterAsync(user, "c", 1, ct: Ct));
        Assert.Equal(long.MaxValue, await _east.IncrementCounterAsync(user, "c", -1, ct: Ct));
        Assert.Equal(long.MaxValue, await _west.IncrementCounterAsync(user, "c", -long.MaxValue, ct: Ct)); // west has not seen east's -1 yet
        await ExchangeAsync(user);

        Assert.Equal(long.MaxValue - 1, await _east.GetCounterAsync(user, "c", Ct));
        Assert.Equal(await _east.GetCounterAsync(user, "c", Ct), await _west.GetCounterAsync(user, "c", Ct));
    }

    [Fact]
    public async Task A_page_ends_early_with_next_once_its_bodies_pass_the_byte_budget()
    {
        var user = ShardDatabase.NewUserId();
        var body = $"{{\"pad\":\"{new string('x', 1000)}\"}}";
        for (var i = 0; i < 10; i++)
        {
            await _east.PutDocumentAsync(user, "big", $"k{i}", body, ct: Ct);
        }

        var keys = new List<string>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await _east.ListDocumentsAsync(user, "big", 100, after, maxBytes: 3500, Ct);
            Assert.InRange(page.Items.Count, 1, 3);
            keys.AddRange(page.Items.Select(d => d.Key));
            after = page.Next;
            pages++;
        }
        while (after is not null && pages < 20);

        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"k{i}"), keys);
        Assert.Equal(4, pages);

        // A single document larger than the budget still makes a page of one.
        var single = await _east.ListDocumentsAsync(user, "big", 100, null, maxBytes: 10, Ct);
        Assert.Equal(["k0"], single.Items.Select(d => d.Key));
        Assert.Equal("k0", single.Next);
    }

    [Fact]
    public async Task Preconditions_follow_rfc_9110()
    {
        var user = ShardDatabase.NewUserId();
        Assert.Equal(DocumentWriteOutcome.PreconditionFailed, (await _east.PutDocumentAsync(user, "d", "k", "1", WriteCondition.None.WithIfMatchAny(), ct: Ct)).Outcome);
        var created = await _east.PutDocumentAsync(user, "d", "k", "1", WriteCondition.None.WithIfNoneMatchAny(), ct: Ct);
        Assert.Equal(DocumentWriteOutcome.Created, created.Outcome);
        Assert.Equal(DocumentWriteOutcome.PreconditionFailed, (await _east.PutDocumentAsync(user, "d", "k", "2", WriteCondition.None.WithIfNoneMatchAny(), ct: Ct)).Outcome);
        Assert.Equal(DocumentWriteOutcome.PreconditionFailed, (await _east.PutDocumentAsync(user, "d", "k", "2", WriteCondition.None.WithIfMatch([]), ct: Ct)).Outcome);
        var replaced = await _east.PutDocumentAsync(user, "d", "k", "2", WriteCondition.None.WithIfMatchAny(), ct: Ct);
        Assert.Equal(DocumentWriteOutcome.Replaced, replaced.Outcome);
        Assert.Equal(DocumentWriteOutcome.PreconditionFailed, (await _east.PutDocumentAsync(user, "d", "k", "3", created.Version, ct: Ct)).Outcome);
        Assert.Equal(DocumentWriteOutcome.Replaced, (await _east.PutDocumentAsync(user, "d", "k", "3", WriteCondition.None.WithIfMatch([created.Version!.Value, replaced.Version!.Value]), ct: Ct)).Outcome);
        Assert.Equal("3", (await _east.GetDocumentAsync(user, "d", "k", Ct))!.Body);
    }

    private async Task ExchangeAsync(string user)
    {
        var fromEast = (await _east.ReadChangesAsync(0, 100_000, "us-east", ct: Ct)).Where(c => c.UserId == user).ToList();
        var fromWest = (await _west.ReadChangesAsync(0, 100_000, "us-west", ct: Ct)).Where(c => c.UserId == user).ToList();
        await _west.ApplyRemoteAsync(fromEast, ct: Ct);
        await _east.ApplyRemoteAsync(fromWest, ct: Ct);
    }
}
