using System.Collections.Concurrent;
using Geo.Contracts.Replication;
using Geo.Core.Tls;
using Grpc.Net.Client;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Sending;

/// <summary>How a replicator reaches a peer: injectable so tests can route links through proxies or fakes.</summary>
internal interface IPeerTransport
{
    Replication.ReplicationClient Client(Uri address);
}

/// <summary>
/// gRPC over HTTP/2 and mutual TLS (this replicator's certificate), one channel per address, keep-alive pings so a dead
/// link is noticed. Message-size limits are <see cref="Hosting.ReplicatorOptions.MaxMessageBytes"/>, the same as the receiver's.
/// </summary>
internal sealed class GrpcPeerTransport(IOptions<Hosting.ReplicatorOptions> options, TlsCredentials tls) : IPeerTransport, IDisposable
{
    private readonly ConcurrentDictionary<Uri, GrpcChannel> _channels = new();
    private readonly int _maxMessageBytes = options.Value.MaxMessageBytes;

    public Replication.ReplicationClient Client(Uri address)
        => new(_channels.GetOrAdd(address, static (a, state) => GrpcChannel.ForAddress(a, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = state.Max,
            MaxSendMessageSize = state.Max,
            HttpHandler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                ConnectTimeout = TimeSpan.FromSeconds(3),
                KeepAlivePingDelay = TimeSpan.FromSeconds(5),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                SslOptions = state.Tls.ClientOptions(),
            },
        }), (Max: _maxMessageBytes, Tls: tls)));

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
    }
}
