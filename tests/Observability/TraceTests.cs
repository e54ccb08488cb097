using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Geo.Observability.Otlp;

namespace Geo.Observability;

/// <summary>One write followed across processes and regions by its trace, as the services export it over OTLP.</summary>
[Collection(ObservedSystemCollection.Name)]
public sealed class TraceTests(ObservedSystem system)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task One_put_through_an_edge_is_one_trace_from_the_edge_to_the_peers_apply()
    {
        var user = await CreateUserAsync("eu-west");
        var traceId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        using var put = new HttpRequestMessage(HttpMethod.Put, $"/v1/users/{user}/docs/notes/traced")
        {
            Content = new StringContent("{\"traced\":true}", Encoding.UTF8, "application/json"),
        };
        put.Headers.Add("traceparent", $"00-{traceId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}-01");
        using (var response = await system.Edge.SendAsync(put, Ct))
        {
            Assert.True(response.IsSuccessStatusCode, $"PUT: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        // The peer applies within seconds; its exporter sends every 200 ms, Redis spans are flushed every second. Bounded
        // wait for the whole chain.
        List<ReceivedSpan> spans = [];
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            spans = [.. system.Otlp.Spans.Where(s => s.TraceId == traceId)];
            if (spans.Any(s => s.Name == "replication apply" && s.Region == "eu-central") && spans.Any(IsRedis))
            {
                break;
            }

            await Task.Delay(250, Ct);
        }

        string Describe() => string.Join('\n', spans.Select(s => $"{s.Service}/{s.Region} {s.Scope} '{s.Name}' {s.SpanId} <- {s.ParentSpanId}"));
        var edge = Single(spans, s => s.Service == "Geo.EdgeRouter" && s.Scope == "Microsoft.AspNetCore" && s.Kind == 2, "edge server span", Describe);
        var api = Single(spans, s => s.Service == "Geo.RegionService" && s.Region == "eu-west" && s.Scope == "Microsoft.AspNetCore" && s.Kind == 2, "RegionService server span", Describe);
        var changeLog = spans.Where(s => s.Service == "Geo.RegionService" && s.Scope == "Npgsql").ToList();
        Assert.True(changeLog.Count > 0, "no Postgres span in RegionService:\n" + Describe());
        var append = Single(changeLog, s => s.Attributes.TryGetValue("db.query.text", out var q) && q.Contains("INSERT INTO change_log", StringComparison.Ordinal),
            "Postgres span that appends the change log", Describe);
        var send = Single(spans, s => s.Service == "Geo.Replicator" && s.Region == "eu-west" && s.Name == "replication send", "eu-west replicator send span", Describe);
        var apply = Single(spans, s => s.Service == "Geo.Replicator" && s.Region == "eu-central" && s.Name == "replication apply", "eu-central replicator apply span", Describe);

        // One trace, one chain: edge -> (proxy client) -> RegionService -> Postgres; the change log row's context is the
        // parent of the send; the send is the parent of the peer's apply, which writes to the peer's Postgres.
        // The write's cache invalidation is a Redis span of the request, named by command only: no key, so no user id.
        var redis = Single(spans, IsRedis, "RegionService Redis span", Describe);
        Assert.DoesNotContain(spans.Where(IsRedis), s => s.Attributes.Values.Any(v => v.Contains(user, StringComparison.Ordinal)));
        var byId = spans.ToDictionary(s => s.SpanId);
        Assert.True(IsAncestor(byId, api, redis), "the Redis span does not descend from the RegionService span:\n" + Describe());
        Assert.True(IsAncestor(byId, edge, api), "the RegionService span does not descend from the edge's:\n" + Describe());
        Assert.True(IsAncestor(byId, api, append), "the change-log append does not descend from the RegionService span:\n" + Describe());
        Assert.True(IsAncestor(byId, api, send), "the replicator's send does not descend from the write's request:\n" + Describe());
        Assert.Equal(send.SpanId, apply.ParentSpanId);
        // Not asserted: that the peer's Postgres write is a child of the apply span. In two of three clean runs it was not
        // in the trace at all within 60 s, while the peer's directory poll (ReadUserChanges) was: the apply's context
        // reaches work it did not start, and its own write sometimes runs outside it. A known gap (docs/operations.md).
        Assert.Equal("eu", api.Region is null ? null : ResourceJurisdiction(api));
    }

    private static bool IsRedis(ReceivedSpan s) => s.Service == "Geo.RegionService" && s.Scope.Contains("StackExchangeRedis", StringComparison.Ordinal);

    private static string? ResourceJurisdiction(ReceivedSpan span) => span.Resource.TryGetValue("geo.jurisdiction", out var j) ? j : null;

    private static ReceivedSpan Single(IEnumerable<ReceivedSpan> spans, Func<ReceivedSpan, bool> match, string what, Func<string> describe)
    {
        var found = spans.Where(match).ToList();
        Assert.True(found.Count >= 1, $"no {what} in the trace:\n{describe()}");
        return found[0];
    }

    private static bool IsAncestor(Dictionary<string, ReceivedSpan> byId, ReceivedSpan ancestor, ReceivedSpan span)
    {
        for (var current = span; byId.TryGetValue(current.ParentSpanId, out var parent); current = parent)
        {
            if (parent.SpanId == ancestor.SpanId)
            {
                return true;
            }
        }

        return false;
    }

    private async Task<string> CreateUserAsync(string home)
    {
        using var response = await system.Edge.PostAsync(new Uri("/v1/users", UriKind.Relative),
            new StringContent($"{{\"residency\":\"eu\",\"homeRegion\":\"{home}\"}}", Encoding.UTF8, "application/json"), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"create: {(int)response.StatusCode} {text}");
        using var document = System.Text.Json.JsonDocument.Parse(text);
        return document.RootElement.GetProperty("userId").GetString()!;
    }
}
