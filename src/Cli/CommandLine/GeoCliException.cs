namespace Geo.Cli.CommandLine;

/// <summary>The one exception geoctl commands throw to stop with a message and an <see cref="ExitCodes">exit code</see>.</summary>
internal sealed class GeoCliException : Exception
{
    public GeoCliException(int exitCode, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ExitCode = exitCode;
    }

    public GeoCliException()
        : this(ExitCodes.Unexpected, "geoctl failed.")
    {
    }

    public GeoCliException(string message)
        : this(ExitCodes.Unexpected, message)
    {
    }

    public GeoCliException(string message, Exception innerException)
        : this(ExitCodes.Unexpected, message, innerException)
    {
    }

    public int ExitCode { get; }

    public static GeoCliException Usage(string message) => new(ExitCodes.Usage, message);

    public static GeoCliException NotFound(string message) => new(ExitCodes.NotFound, message);

    public static GeoCliException Refused(string message) => new(ExitCodes.Refused, message);

    /// <summary>
    /// True when a gRPC call never reached its service: Unavailable, DeadlineExceeded, or Cancelled by a connect timeout
    /// (the channel's ConnectTimeout surfaces as Cancelled with a <see cref="TimeoutException"/> inside).
    /// </summary>
    public static bool IsUnreachable(Grpc.Core.RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.StatusCode is Grpc.Core.StatusCode.Unavailable or Grpc.Core.StatusCode.DeadlineExceeded)
        {
            return !IsTlsRefusal(e);
        }

        if (e.StatusCode != Grpc.Core.StatusCode.Cancelled)
        {
            return false;
        }

        for (Exception? inner = e.Status.DebugException; inner is not null; inner = inner.InnerException)
        {
            if (inner is TimeoutException)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True when a gRPC call failed because a TLS handshake was refused (a certificate of another CA, on either side).</summary>
    public static bool IsTlsRefusal(Grpc.Core.RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        for (Exception? inner = e.Status.DebugException; inner is not null; inner = inner.InnerException)
        {
            if (inner is System.Security.Authentication.AuthenticationException)
            {
                return true;
            }
        }

        return false;
    }
}
