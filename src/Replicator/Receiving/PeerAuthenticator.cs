using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
using Geo.Core.Topology;
using Geo.Replicator.Hosting;
using Geo.Replicator.Telemetry;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace Geo.Replicator.Receiving;

/// <summary>
/// Authenticates a calling replicator by its region header and the shared secret for that link. Never open: a missing
/// or wrong token, or an unknown region, is refused with UNAUTHENTICATED.
/// </summary>
internal sealed partial class PeerAuthenticator(GeoTopology topology, IOptions<GeoSiteOptions> site, PeerSecrets secrets,
    ReplicatorMetrics metrics, ILogger<PeerAuthenticator> logger)
{
    public const string RegionHeader = "geo-peer-region";
    public const string TokenHeader = "geo-peer-token";

    /// <summary>The authenticated peer region of the call.</summary>
    public string Authenticate(ServerCallContext context)
    {
        var region = context.RequestHeaders.GetValue(RegionHeader);
        var token = context.RequestHeaders.GetValue(TokenHeader);
        if (string.IsNullOrEmpty(region) || !topology.Regions.ContainsKey(region) || region == site.Value.Region)
        {
            Refuse(region, "unknown or missing peer region");
        }

        if (string.IsNullOrEmpty(token)
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(token), Encoding.UTF8.GetBytes(secrets.For(region))))
        {
            Refuse(region, "missing or wrong peer token");
        }

        return region;
    }

    [DoesNotReturn]
    private void Refuse(string? region, string reason)
    {
        metrics.PeerRefused(region ?? "unknown");
        LogRefused(logger, region ?? "(none)", reason);
        throw new RpcException(new Status(StatusCode.Unauthenticated, $"Replication peer refused: {reason}."));
    }

    [LoggerMessage(EventId = EventIds.PeerRefused, Level = LogLevel.Warning, Message = "Refused a replication call claiming region {Peer}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string peer, string reason);
}

/// <summary>The shared secrets: <c>Replicator:PeerToken</c>, per-peer overrides, or the token file (created when missing).</summary>
internal sealed partial class PeerSecrets
{
    private readonly ReplicatorOptions _options;
    private readonly string _default;

    public PeerSecrets(IOptions<ReplicatorOptions> options, ILogger<PeerSecrets> logger)
    {
        _options = options.Value;
        _default = !string.IsNullOrEmpty(_options.PeerToken) ? _options.PeerToken : ReadOrCreate(_options.PeerTokenFile, logger);
    }

    public string For(string peer) => _options.TokenFor(peer, _default);

    private static string ReadOrCreate(string path, ILogger logger)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (File.Exists(path))
            {
                var text = File.ReadAllText(path).Trim();
                if (text.Length >= 16)
                {
                    return text;
                }
            }

            try
            {
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
                using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
                var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
                file.Write(Encoding.UTF8.GetBytes(secret));
                LogTokenGenerated(logger, Path.GetFullPath(path));
                return secret;
            }
            catch (IOException) when (attempt < 20)
            {
                Thread.Sleep(50); // Another replicator is writing it; read it on the next round.
            }
        }
    }

    [LoggerMessage(EventId = EventIds.TokenGenerated, Level = LogLevel.Warning, Message = "No Replicator:PeerToken set; generated a peer secret in {Path} (every peer must share it)")]
    private static partial void LogTokenGenerated(ILogger logger, string path);
}
