using System.Diagnostics;
using System.Net.Sockets;

namespace Geo.Testing.Services;

/// <summary>
/// What a load balancer in front of several edges does, as an <see cref="HttpClient"/> for tests: requests go to the
/// edges in turn; an edge that refuses the connection (the request never reached it) gets the request sent to the next
/// one at once; an edge whose answer says <c>Geo-Draining</c> (it is stopping) is left out for a while. Nothing that
/// reached an edge is ever sent twice. Create with <see cref="Create"/>; relative URIs only.
/// </summary>
public sealed class EdgePool : DelegatingHandler
{
    private const string DrainingHeader = "Geo-Draining";

    private readonly Func<IReadOnlyList<Uri>> _edges;
    private readonly TimeSpan _leaveOut;
    private readonly Dictionary<Uri, long> _outUntil = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _next;
    private int _resent;

    private EdgePool(Func<IReadOnlyList<Uri>> edges, TimeSpan leaveOut)
        : base(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(1), SslOptions = Security.TestPki.Harness.ClientOptions() })
    {
        _edges = edges;
        _leaveOut = leaveOut;
    }

    /// <summary>Requests resent to another edge because one refused the connection.</summary>
    public int Resent => Volatile.Read(ref _resent);

    /// <summary>A client over the edges <paramref name="edges"/> returns (read per request: ports stay, processes restart).</summary>
    public static (HttpClient Client, EdgePool Pool) Create(Func<IReadOnlyList<Uri>> edges, TimeSpan? leaveOut = null)
    {
        var pool = new EdgePool(edges, leaveOut ?? TimeSpan.FromSeconds(5));
        return (new HttpClient(TestCredentials.WithBearer(pool)) { BaseAddress = new Uri("http://edge-pool.invalid"), Timeout = TimeSpan.FromSeconds(30) }, pool);
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var relative = request.RequestUri!.PathAndQuery;
        var edges = _edges();
        var refused = new HashSet<Uri>();
        while (true)
        {
            var edge = Pick(edges, refused);
            request.RequestUri = new Uri(edge, relative);
            try
            {
                var response = await base.SendAsync(request, cancellationToken);
                if (response.Headers.Contains(DrainingHeader))
                {
                    LeaveOut(edge);
                }

                return response;
            }
            catch (HttpRequestException ex) when (NeverReached(ex) && refused.Count + 1 < edges.Count)
            {
                refused.Add(edge);
                LeaveOut(edge);
                Interlocked.Increment(ref _resent);
            }
        }
    }

    private Uri Pick(IReadOnlyList<Uri> edges, HashSet<Uri> refused)
    {
        var now = _clock.ElapsedMilliseconds;
        lock (_outUntil)
        {
            var start = _next++;
            Uri? fallback = null;
            for (var i = 0; i < edges.Count; i++)
            {
                var edge = edges[(int)((uint)(start + i) % (uint)edges.Count)];
                if (refused.Contains(edge))
                {
                    continue;
                }

                fallback ??= edge;
                if (!_outUntil.TryGetValue(edge, out var until) || until <= now)
                {
                    return edge;
                }
            }

            return fallback ?? edges[0];
        }
    }

    private void LeaveOut(Uri edge)
    {
        lock (_outUntil)
        {
            _outUntil[edge] = _clock.ElapsedMilliseconds + (long)_leaveOut.TotalMilliseconds;
        }
    }

    private static bool NeverReached(HttpRequestException ex)
        => ex.HttpRequestError == HttpRequestError.ConnectionError
            || ex.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused };
}
