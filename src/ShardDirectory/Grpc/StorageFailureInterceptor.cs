using Grpc.Core;
using Grpc.Core.Interceptors;
using Npgsql;

namespace Geo.ShardDirectory.Grpc;

/// <summary>Turns a directory-database outage into <c>UNAVAILABLE</c> (retryable) instead of <c>UNKNOWN</c>, logged once here.</summary>
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
    }

    private static bool IsStorageFailure(Exception e, ServerCallContext context)
        => e is NpgsqlException { IsTransient: true } or TimeoutException && !context.CancellationToken.IsCancellationRequested;

    [LoggerMessage(EventId = EventIds.StorageUnavailable, Level = LogLevel.Warning, Message = "Directory database unavailable during {Method}")]
    private static partial void LogStorageFailure(ILogger logger, string method, Exception exception);
}
