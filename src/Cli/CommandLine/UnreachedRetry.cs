using Grpc.Core;

namespace Geo.Cli.CommandLine;

/// <summary>
/// How geoctl calls a service over gRPC: a connect window wide enough for a fresh process (its first handshake pays
/// JIT, the TLS stack's start and the first chain build), and a few more attempts for a call that never reached the
/// service (refused, reset, a connect timeout). A call that may have reached it (a passed deadline) is not repeated.
/// </summary>
internal static class UnreachedRetry
{
    /// <summary>The connect window of geoctl's channels (the services' own is 3 s).</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Attempts in all for a call that never reached the service.</summary>
    public const int Attempts = 3;

    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Runs <paramref name="call"/>, which reports failures as <see cref="GeoCliException"/>s around the gRPC error,
    /// again (up to <see cref="Attempts"/>, 1 s, 2 s apart) while the error says the request was never sent.
    /// </summary>
    public static async Task<T> RunAsync<T>(Func<Task<T>> call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call();
            }
            catch (GeoCliException e) when (attempt < Attempts && e.InnerException is RpcException inner && NeverReached(inner))
            {
                await Task.Delay(Delay * attempt, ct);
            }
        }
    }

    // Unavailable (refused, reset) or a connect timeout (Cancelled around a TimeoutException): the request was not sent.
    // DeadlineExceeded is not here: the service may have acted on the call.
    private static bool NeverReached(RpcException e)
        => e.StatusCode is StatusCode.Unavailable or StatusCode.Cancelled && GeoCliException.IsUnreachable(e);
}
