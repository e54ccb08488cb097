using System.Net;
using Geo.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Geo.EdgeRouter.Tests.Cluster;

/// <summary>Geo.Client against real edges and regions: the walk-through, lost responses, Retry-After, typed 412.</summary>
[Collection(EdgeClusterCollection.Name)]
public sealed class ClientTests(EdgeCluster cluster) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly List<ServiceProvider> _providers = [];

    public ValueTask InitializeAsync() => new(cluster.RestoreAsync());

    public async ValueTask DisposeAsync()
    {
        foreach (var provider in _providers)
        {
            await provider.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_walk_through_create_put_get_list_counter_412_delete()
    {
        var geo = Client(cluster.Edge.BaseAddress);
        var user = await geo.CreateUserAsync("eu", ct: Ct);
        Assert.Equal("eu-west", user.HomeRegion);

        var first = await geo.PutDocumentAsync(user.UserId, "notes", "a/1", new Note("hello"), createOnly: true, ct: Ct);
        Assert.True(first.Created);
        Assert.Equal($"\"{first.Version}\"", first.ETag);
        var read = await geo.GetDocumentAsync<Note>(user.UserId, "notes", "a/1", Ct);
        Assert.Equal(new Note("hello"), read!.Value);
        Assert.Equal(first.ETag, read.ETag);

        var second = await geo.PutDocumentAsync(user.UserId, "notes", "a/1", new Note("again"), ifMatch: read.ETag, ct: Ct);
        Assert.False(second.Created);
        var stale = await Assert.ThrowsAsync<GeoPreconditionFailedException>(() => geo.PutDocumentAsync(user.UserId, "notes", "a/1", new Note("lost"), ifMatch: first.ETag, ct: Ct));
        Assert.Equal("precondition-failed", stale.Slug);

        for (var i = 0; i < 5; i++)
        {
            await geo.PutDocumentAsync(user.UserId, "notes", $"b{i}", new Note($"n{i}"), ct: Ct);
        }

        var listed = new List<string>();
        await foreach (var document in geo.ListDocumentsAsync<Note>(user.UserId, "notes", pageSize: 2, ct: Ct))
        {
            listed.Add(document.Key);
        }

        Assert.Equal(["a/1", "b0", "b1", "b2", "b3", "b4"], listed);
        Assert.Equal(5, await geo.IncrementCounterAsync(user.UserId, "visits", 5, Ct));
        Assert.Equal(3, await geo.IncrementCounterAsync(user.UserId, "visits", -2, Ct));
        Assert.Equal(3, await geo.GetCounterAsync(user.UserId, "visits", Ct));

        Assert.True(await geo.DeleteDocumentAsync(user.UserId, "notes", "a/1", second.ETag, Ct));
        Assert.Null(await geo.GetDocumentAsync<Note>(user.UserId, "notes", "a/1", Ct));
        Assert.False(await geo.DeleteDocumentAsync(user.UserId, "notes", "a/1", ct: Ct));
        await Assert.ThrowsAsync<GeoNotFoundException>(() => geo.GetUserAsync(user.UserId.ToUpperInvariant(), Ct));
    }

    [Fact]
    public async Task A_write_retried_after_a_lost_response_has_one_effect()
    {
        var loser = new LoseFirstResponse();
        var geo = Client(cluster.Edge.BaseAddress, loser);
        var user = await geo.CreateUserAsync("eu", ct: Ct);

        loser.Armed = true;
        Assert.Equal(7, await geo.IncrementCounterAsync(user.UserId, "once", 7, Ct));
        Assert.Equal(1, loser.Lost);
        Assert.Equal(7, await geo.GetCounterAsync(user.UserId, "once", Ct));

        loser.Armed = true;
        var put = await geo.PutDocumentAsync(user.UserId, "notes", "k", new Note("x"), createOnly: true, ct: Ct);
        Assert.True(put.Created); // the replay of the first attempt's 201, not a 412 from If-None-Match on the retry
        Assert.Equal(2, loser.Lost);
    }

    [Fact]
    public async Task A_429_with_retry_after_is_waited_out()
    {
        var geo = Client(cluster.Edge.BaseAddress);
        var user = await geo.CreateUserAsync("eu", ct: Ct);
        var watch = new StatusWatch();
        var limited = Client(cluster.LimitedEdge.BaseAddress, watch);

        // The limited edge allows a user 1 request per second after a burst of 3: six at once cannot all pass at once,
        // however slow the machine; every one is retried after Retry-After until it does.
        var values = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => limited.IncrementCounterAsync(user.UserId, "rate", 1, Ct)));
        Assert.Equal([1, 2, 3, 4, 5, 6], values.Order());

        Assert.True(watch.Seen(HttpStatusCode.TooManyRequests) > 0, "the limited edge never answered 429");
        Assert.Equal(6, await geo.GetCounterAsync(user.UserId, "rate", Ct));
    }

    private GeoClient Client(Uri edge, DelegatingHandler? inner = null)
    {
        var services = new ServiceCollection();
        var builder = services.AddGeoClient(o =>
        {
            o.BaseAddress = edge;
            o.MaxRetries = 6;
            o.RetryDelay = TimeSpan.FromMilliseconds(50);
        });
        var clientId = Guid.NewGuid().ToString();
        builder.AddHttpMessageHandler(() => new ClientIdHandler(clientId));
        if (inner is not null)
        {
            builder.AddHttpMessageHandler(() => inner);
        }

        var provider = services.BuildServiceProvider();
        _providers.Add(provider);
        return provider.GetRequiredService<GeoClient>();
    }

    private sealed record Note(string Text);

    /// <summary>Each test is its own client for the edge's per-client rate limit.</summary>
    private sealed class ClientIdHandler(string id) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.TryAddWithoutValidation("X-Client-Id", id);
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>When armed, lets one write reach the server and then loses its response, as a dropped connection would.</summary>
    private sealed class LoseFirstResponse : DelegatingHandler
    {
        public bool Armed { get; set; }

        public int Lost { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (Armed && request.Method != HttpMethod.Get)
            {
                Armed = false;
                Lost++;
                Assert.True(response.IsSuccessStatusCode, $"the first attempt failed: {(int)response.StatusCode}");
                response.Dispose();
                throw new HttpRequestException("response lost (test)");
            }

            return response;
        }
    }

    private sealed class StatusWatch : DelegatingHandler
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<HttpStatusCode, int> _seen = new();

        public int Seen(HttpStatusCode status) => _seen.GetValueOrDefault(status);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            _seen.AddOrUpdate(response.StatusCode, 1, (_, n) => n + 1);
            return response;
        }
    }
}
