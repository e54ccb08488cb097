namespace Geo.Contracts.Directory;

/// <summary>Stable prefixes of directory error details that clients act on.</summary>
public static class DirectoryErrors
{
    /// <summary>FAILED_PRECONDITION from CreateUser: the idempotency key was used with another request.</summary>
    public const string IdempotencyKeyReused = "idempotency-key-reused";

    /// <summary>Whether <paramref name="ex"/> is the directory saying an idempotency key was reused with another request.</summary>
    public static bool IsIdempotencyKeyReused(Grpc.Core.RpcException ex)
        => ex.StatusCode == Grpc.Core.StatusCode.FailedPrecondition && ex.Status.Detail.StartsWith(IdempotencyKeyReused, StringComparison.Ordinal);
}
