using System.Collections.Concurrent;
using Geo.Contracts.Replication;
using Geo.Core.Tls;
using Grpc.Net.Client;

namespace Geo.Replicator.Sending;

/// <summary>How a replicator reaches a peer: injectable so tests can route links through proxies or fakes.</summary>
internal interface IPeerTransport
{
    Replication.ReplicationClient Client(Uri address);
}

/// <summary>gRPC over HTTP/2 and mutual TLS (this replicator's certificate), one channel per address, keep-alive pings so a dead link is noticed.</summary>
internal sealed class GrpcPeerTransport(TlsCredentials tls) : IPeerTransport, IDisposable
{
    private readonly ConcurrentDictionary<Uri, GrpcChannel> _channels = new();

    public Replication.ReplicationClient Client(Uri address)
        => new(_channels.GetOrAdd(address, a => GrpcChannel.ForAddress(a, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = 64 * 1024 * 1024,
            MaxSendMessageSize = 64 * 1024 * 1024,
            HttpHandler = new SocketsHttpHandler
            {
                EnableMultipleHttp2Connections = true,
                ConnectTimeout = TimeSpan.FromSeconds(3),
                KeepAlivePingDelay = TimeSpan.FromSeconds(5),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                SslOptions = tls.ClientOptions(),
            },
        })));

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }
    }
}
