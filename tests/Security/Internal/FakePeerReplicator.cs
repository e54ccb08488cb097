using Geo.Contracts.Replication;
using Geo.Core.Tls;
using Geo.Testing.Security;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Geo.Security.Tests.Internal;

/// <summary>
/// A scripted eu-central replicator (in process, mutual TLS with eu-central's replicator certificate of the run's CA):
/// answers anti-entropy with the digests and rows a test sets, so a test can show what eu-west does with rows a peer
/// sends. Replicate streams are refused (the fake ships no changes).
/// </summary>
public sealed class FakePeerReplicator : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakePeerReplicator(WebApplication app, Script script)
    {
        _app = app;
        Scripted = script;
    }

    /// <summary>What the fake answers.</summary>
    public Script Scripted { get; }

    public static async Task<FakePeerReplicator> StartAsync(int port)
    {
        var credentials = TestPki.For("eu-central", PeerRoles.Replicator);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenLocalhost(port, l =>
        {
            l.Protocols = HttpProtocols.Http2;
            l.UseHttps(h =>
            {
                h.ServerCertificate = credentials.Certificate;
                h.ClientCertificateMode = ClientCertificateMode.AllowCertificate;
                h.ClientCertificateValidation = (c, _, _) => credentials.IsTrusted(c, TlsPurpose.Client);
            });
        }));
        var script = new Script();
        builder.Services.AddSingleton(script);
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<Service>();
        await app.StartAsync();
        return new FakePeerReplicator(app, script);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>The scripted answers.</summary>
    public sealed class Script
    {
        private readonly Lock _lock = new();
        private Dictionary<int, List<Change>> _rows = [];

        /// <summary>Scripts <paramref name="bucket"/>: its digest differs from any real one (hash "scripted") and GetBucketRows answers <paramref name="rows"/>.</summary>
        public void SetRows(int bucket, params Change[] rows)
        {
            lock (_lock)
            {
                _rows = new Dictionary<int, List<Change>> { [bucket] = [.. rows] };
            }
        }

        internal Dictionary<int, List<Change>> Rows()
        {
            lock (_lock)
            {
                return _rows;
            }
        }
    }

    private sealed class Service(Script script) : Replication.ReplicationBase
    {
        public override Task<BucketDigestsResponse> GetBucketDigests(BucketDigestsRequest request, ServerCallContext context)
        {
            var response = new BucketDigestsResponse();
            foreach (var (bucket, rows) in script.Rows())
            {
                if (request.Buckets.Count == 0 || request.Buckets.Contains(bucket))
                {
                    response.Digests.Add(new BucketDigest { Bucket = bucket, Documents = rows.Count, Hash = "scripted" });
                }
            }

            return Task.FromResult(response);
        }

        public override Task<BucketRowsResponse> GetBucketRows(BucketRowsRequest request, ServerCallContext context)
        {
            var response = new BucketRowsResponse();
            if (script.Rows().TryGetValue(request.Bucket, out var rows))
            {
                response.Changes.Add(rows);
            }

            return Task.FromResult(response);
        }
    }
}
