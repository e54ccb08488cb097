using Geo.Core.Tls;
using Yarp.ReverseProxy.Forwarder;

namespace Geo.EdgeRouter.Routing;

/// <summary>
/// YARP's outbound handler with the edge's client certificate and the deployment's CA: proxied requests and active
/// health probes reach the regions' APIs over mutual TLS.
/// </summary>
internal sealed class MutualTlsForwarderFactory(TlsCredentials tls) : ForwarderHttpClientFactory
{
    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.SslOptions = tls.ClientOptions();
    }
}
