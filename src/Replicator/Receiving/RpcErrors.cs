using System.Diagnostics.CodeAnalysis;
using Grpc.Core;

namespace Geo.Replicator.Receiving;

/// <summary>Throw helpers: every gRPC error leaves with a precise status code and a message that says the fix.</summary>
internal static class RpcErrors
{
    [DoesNotReturn]
    public static void InvalidArgument(string detail) => throw new RpcException(new Status(StatusCode.InvalidArgument, detail));

    [DoesNotReturn]
    public static T Unavailable<T>(string detail) => throw new RpcException(new Status(StatusCode.Unavailable, detail));
}
