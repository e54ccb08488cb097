using System.Collections;
using Geo.Core.Tls;
using Geo.ServiceDefaults.Tls;
using Geo.Testing.Security;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;

namespace Geo.Security.Tests.Internal;

/// <summary>
/// Reading a caller's identities from concurrent requests of one connection, as the streams of one HTTP/2 connection
/// do. A directory's CI run once answered one of ten concurrent first CreateUser calls with UNKNOWN: the identities were
/// cached in the connection's items, which the streams share and which are not safe for concurrent writers.
/// </summary>
public sealed class PeerAccessTests
{
    [Fact]
    public async Task Concurrent_requests_of_one_connection_read_the_identities_without_racing_on_shared_state()
    {
        using var credentials = TestPki.Issue(new PeerIdentity("eu-west", PeerRoles.Api), new PeerIdentity("eu-west", PeerRoles.Replicator));
        var items = new OneAtATimeItems();
        const int Streams = 16;
        using var start = new Barrier(Streams);
        var reads = Enumerable.Range(0, Streams).Select(_ => Task.Factory.StartNew(() =>
        {
            // One HttpContext per stream, the connection's items and certificate shared, as Kestrel's HTTP/2 does.
            var context = new DefaultHttpContext();
            context.Features.Set<IConnectionItemsFeature>(new ItemsFeature(items));
            context.Connection.ClientCertificate = credentials.Certificate;
            start.SignalAndWait(TestContext.Current.CancellationToken);
            return PeerAccess.Identities(context);
        }, TestContext.Current.CancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        var identities = await Task.WhenAll(reads);

        Assert.Equal(0, items.Overlaps);
        Assert.All(identities, i => Assert.Equal(credentials.Identities, i));
    }

    [Fact]
    public void A_request_without_a_certificate_has_no_identities()
        => Assert.Empty(PeerAccess.Identities(new DefaultHttpContext()));

    private sealed class ItemsFeature(IDictionary<object, object?> items) : IConnectionItemsFeature
    {
        public IDictionary<object, object?> Items { get; set; } = items;
    }

    /// <summary>Connection items that count calls overlapping another call; each call lingers so overlaps show.</summary>
    private sealed class OneAtATimeItems : IDictionary<object, object?>
    {
        private readonly Dictionary<object, object?> _inner = [];
        private int _active;
        private int _overlaps;

        public int Overlaps => Volatile.Read(ref _overlaps);

        public object? this[object key]
        {
            get => Guarded(() => _inner[key]);
            set => Guarded(() => _inner[key] = value);
        }

        public ICollection<object> Keys => Guarded(() => _inner.Keys.ToArray());

        public ICollection<object?> Values => Guarded(() => _inner.Values.ToArray());

        public int Count => Guarded(() => _inner.Count);

        public bool IsReadOnly => false;

        public void Add(object key, object? value) => Guarded(() => { _inner.Add(key, value); return 0; });

        public void Add(KeyValuePair<object, object?> item) => Add(item.Key, item.Value);

        public void Clear() => Guarded(() => { _inner.Clear(); return 0; });

        public bool Contains(KeyValuePair<object, object?> item) => Guarded(() => _inner.Contains(item));

        public bool ContainsKey(object key) => Guarded(() => _inner.ContainsKey(key));

        public void CopyTo(KeyValuePair<object, object?>[] array, int arrayIndex) => Guarded(() => { ((ICollection<KeyValuePair<object, object?>>)_inner).CopyTo(array, arrayIndex); return 0; });

        public IEnumerator<KeyValuePair<object, object?>> GetEnumerator() => Guarded(() => _inner.ToList()).GetEnumerator();

        public bool Remove(object key) => Guarded(() => _inner.Remove(key));

        public bool Remove(KeyValuePair<object, object?> item) => Guarded(() => ((ICollection<KeyValuePair<object, object?>>)_inner).Remove(item));

        public bool TryGetValue(object key, out object? value)
        {
            object? found = null;
            var result = Guarded(() => _inner.TryGetValue(key, out found));
            value = found;
            return result;
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

        private T Guarded<T>(Func<T> operation)
        {
            if (Interlocked.Increment(ref _active) > 1)
            {
                Interlocked.Increment(ref _overlaps);
            }

            try
            {
                Thread.Sleep(5);
                return operation();
            }
            finally
            {
                Interlocked.Decrement(ref _active);
            }
        }
    }
}
