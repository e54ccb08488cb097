using Grpc.Core;
using Grpc.Core.Interceptors;
using Npgsql;

namespace Geo.ShardDirectory.Grpc;

/// <summary>
/// The gRPC boundary: turns a directory-database outage into <c>UNAVAILABLE</c> (retryable) instead of <c>UNKNOWN</c>,
/// a caller's cancel into <c>CANCELLED</c>, and logs every other unexpected failure once, at Error.
/// </summary>
internal sealed partial class StorageFailureInterceptor(ILogger<StorageFailureInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception e) when (IsStorageFailure(e, context))
        {
            LogStorageFailure(logger, context.Method, e);
            RpcErrors.Unavailable("the directory database is unavailable; retry with backoff", e);
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The caller went away (deadline or cancel): an expected end, not a server error to log.
            throw new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled by the caller"));
        }
        catch (Exception e) when (IsUnexpected(e, context))
        {
            LogUnexpected(logger, context.Method, e);
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception e) when (IsStorageFailure(e, context))
        {
            LogStorageFailure(logger, context.Method, e);
            RpcErrors.Unavailable("the directory database is unavailable; retry with backoff", e);
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled by the caller"));
        }
        catch (Exception e) when (IsUnexpected(e, context))
        {
            LogUnexpected(logger, context.Method, e);
            throw;
        }
    }

    private static bool IsStorageFailure(Exception e, ServerCallContext context)
        => e is NpgsqlException { IsTransient: true } or TimeoutException && !context.CancellationToken.IsCancellationRequested;

    // An RpcException is a deliberate answer; a failure after the caller left is the caller's doing.
    private static bool IsUnexpected(Exception e, ServerCallContext context)
        => e is not RpcException && !context.CancellationToken.IsCancellationRequested;

    [LoggerMessage(EventId = EventIds.UnexpectedError, Level = LogLevel.Error, Message = "Unexpected error in {Method}")]
    private static partial void LogUnexpected(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = EventIds.StorageUnavailable, Level = LogLevel.Warning, Message = "Directory database unavailable during {Method}")]
    private static partial void LogStorageFailure(ILogger logger, string method, Exception exception);
}
