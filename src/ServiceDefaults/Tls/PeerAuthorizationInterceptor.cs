using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Geo.ServiceDefaults.Tls;

/// <summary>
/// The one role check of every gRPC call: UNAUTHENTICATED without a client certificate (or one naming no
/// <c>geo://</c> identity), PERMISSION_DENIED when none of its identities has a role the method's
/// <see cref="PeerRoleAttribute"/> allows from the caller's region. The identity it authorized is what the handler
/// reads (<see cref="PeerAccess.Caller"/>). Refusals are logged and counted (<c>geo_peer_refused_total</c>).
/// </summary>
public sealed partial class PeerAuthorizationInterceptor(IConfiguration configuration, PeerMetrics metrics, ILogger<PeerAuthorizationInterceptor> logger) : Interceptor
{
    private readonly string _region = configuration["Geo:Region"] ?? string.Empty;

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context,
        ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Authorize(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Authorize(ServerCallContext context)
    {
        var http = context.GetHttpContext();
        var identities = PeerAccess.Identities(http);
        if (identities.Count == 0)
        {
            Refuse(context.Method, "(none)", "no client certificate with a geo:// identity", StatusCode.Unauthenticated);
        }

        var rule = http.GetEndpoint()?.Metadata.GetMetadata<PeerRoleAttribute>();
        if (PeerAccess.Match(identities, rule, _region) is not { } caller)
        {
            Refuse(context.Method, string.Join(",", identities), $"needs role {string.Join(" or ", rule!.Roles)} ({rule.Region} region)", StatusCode.PermissionDenied);
            return;
        }

        PeerAccess.SetCaller(http, caller);
    }

    private void Refuse(string method, string caller, string reason, StatusCode status)
    {
        metrics.Refused(method, status == StatusCode.Unauthenticated ? "unauthenticated" : "forbidden");
        LogRefused(logger, method, caller, reason);
        throw new RpcException(new Status(status, $"{method}: refused for {caller}: {reason}."));
    }

    [LoggerMessage(EventId = EventIds.PeerRefused, Level = LogLevel.Warning, Message = "Refused {Method} from {Caller}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string method, string caller, string reason);
}
