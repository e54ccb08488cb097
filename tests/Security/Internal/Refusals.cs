using System.Security.Authentication;
using Geo.Core.Tls;
using Geo.Testing.Security;
using Grpc.Core;

namespace Geo.Security.Tests.Internal;

/// <summary>The callers a hostile peer could be, by name (test data must be serializable), and the checks every refusal makes.</summary>
internal static class Refusals
{
    /// <summary>
    /// "none" (no client certificate), "foreign:{region}/{role}" (another CA), else "{region}/{role}" of the run's CA
    /// (<c>global/admin</c> for the admin).
    /// </summary>
    public static TlsCredentials? Caller(string name)
    {
        if (name == "none")
        {
            return null;
        }

        var foreign = name.StartsWith("foreign:", StringComparison.Ordinal);
        var parts = (foreign ? name["foreign:".Length..] : name).Split('/');
        var identity = new PeerIdentity(parts[0], parts[1]);
        return foreign ? MeshCluster.Foreign(identity) : TestPki.For(identity);
    }

    /// <summary>The status a caller that may not make the call gets: no certificate is UNAUTHENTICATED, a wrong one PERMISSION_DENIED.</summary>
    public static StatusCode Expected(string name) => name == "none" ? StatusCode.Unauthenticated : StatusCode.PermissionDenied;

    /// <summary>Runs <paramref name="call"/>, which must be refused as <paramref name="caller"/> deserves, and shows that no store changed.</summary>
    public static async Task AssertRefusedAsync(MeshCluster cluster, string caller, Func<Task> call)
    {
        var before = await cluster.SnapshotAsync();
        var error = await Assert.ThrowsAsync<RpcException>(call);
        if (caller.StartsWith("foreign:", StringComparison.Ordinal))
        {
            Assert.True(IsHandshakeRefusal(error), $"expected a refused TLS handshake, got {error.Status}");
        }
        else
        {
            Assert.Equal(Expected(caller), error.StatusCode);
        }

        Assert.Equal(before, await cluster.SnapshotAsync());
    }

    /// <summary>True when the call never got past TLS (a certificate of another CA, on either side).</summary>
    public static bool IsHandshakeRefusal(Exception error)
    {
        for (var e = error is RpcException rpc ? rpc.Status.DebugException : error; e is not null; e = e.InnerException)
        {
            if (e is AuthenticationException or IOException)
            {
                return true;
            }
        }

        return false;
    }
}
