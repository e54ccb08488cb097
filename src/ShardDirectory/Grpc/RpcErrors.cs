using System.Diagnostics.CodeAnalysis;
using Grpc.Core;

namespace Geo.ShardDirectory.Grpc;

/// <summary>Throws the <see cref="RpcException"/> of each failure, with its precise status code.</summary>
internal static class RpcErrors
{
    [DoesNotReturn]
    public static void InvalidArgument(string detail) => throw new RpcException(new Status(StatusCode.InvalidArgument, detail));

    [DoesNotReturn]
    public static void NotFound(string detail) => throw new RpcException(new Status(StatusCode.NotFound, detail));

    [DoesNotReturn]
    public static void AlreadyExists(string detail) => throw new RpcException(new Status(StatusCode.AlreadyExists, detail));

    [DoesNotReturn]
    public static void FailedPrecondition(string detail) => throw new RpcException(new Status(StatusCode.FailedPrecondition, detail));

    [DoesNotReturn]
    public static void StaleEpoch(long expected, long current)
        => throw new RpcException(new Status(StatusCode.FailedPrecondition, $"stale epoch {expected}, current {current}"));

    [DoesNotReturn]
    public static void Unavailable(string detail, Exception inner) => throw new RpcException(new Status(StatusCode.Unavailable, detail, inner));
}
