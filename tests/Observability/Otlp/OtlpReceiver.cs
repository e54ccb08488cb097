using System.Collections.Concurrent;
using System.Net;
using Geo.Testing;

namespace Geo.Observability.Otlp;

/// <summary>A span as exported, with its service's resource.</summary>
public sealed record ReceivedSpan(string Service, string? Region, string Scope, string Name, string TraceId, string SpanId, string ParentSpanId,
    int Kind, IReadOnlyDictionary<string, string> Attributes, IReadOnlyList<(string TraceId, string SpanId)> Links,
    IReadOnlyDictionary<string, string> Resource);

/// <summary>
/// An OTLP/HTTP protobuf trace endpoint on a loopback port (<c>POST /v1/traces</c>), keeping every span it receives.
/// Services find it through <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> = <see cref="Endpoint"/> with protocol http/protobuf.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentQueue<ReceivedSpan> _spans = new();
    private readonly Task _loop;

    public OtlpReceiver()
    {
        var port = FreePort.Next();
        Endpoint = new Uri($"http://127.0.0.1:{port}");
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public Uri Endpoint { get; }

    public IReadOnlyCollection<ReceivedSpan> Spans => _spans;

    /// <summary>The settings that point a service's exporter here (exported every 200 ms).</summary>
    public (string Key, string Value)[] Settings =>
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", Endpoint.ToString().TrimEnd('/')),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            try
            {
                await AnswerAsync(context);
            }
            catch (Exception ex) when (CutShort(ex))
            {
                // The exporter went away mid-request, or this receiver is stopping while a service still exports (its
                // last batch at shutdown), which can fail anywhere in the answer: that request is lost, which no test
                // counts on; the loop ends once stopped.
            }
            finally
            {
                CloseQuietly(context.Response);
            }
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        if (context.Request.HttpMethod != "POST" || context.Request.Url?.AbsolutePath != "/v1/traces")
        {
            context.Response.StatusCode = 404;
            return;
        }

        using var body = new MemoryStream();
        await context.Request.InputStream.CopyToAsync(body);
        ExportTraceServiceRequest request;
        try
        {
            request = ExportTraceServiceRequest.Parser.ParseFrom(body.ToArray());
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            context.Response.StatusCode = 400;
            return;
        }

        Take(request);
        context.Response.ContentType = "application/x-protobuf";
        await context.Response.OutputStream.WriteAsync(Google.Protobuf.MessageExtensions.ToByteArray(new ExportTraceServiceResponse()));
    }

    // How a request fails when the exporter goes away or this receiver stops under it.
    private static bool CutShort(Exception ex) => ex is HttpListenerException or IOException or ObjectDisposedException or InvalidOperationException;

    private static void CloseQuietly(HttpListenerResponse response)
    {
        try
        {
            response.Close();
        }
        catch (Exception ex) when (CutShort(ex))
        {
            // Stopped while answering: nothing to close.
        }
    }

    private void Take(ExportTraceServiceRequest request)
    {
        foreach (var resourceSpans in request.ResourceSpans)
        {
            var resource = Attributes(resourceSpans.Resource?.Attributes ?? []);
            resource.TryGetValue("service.name", out var service);
            resource.TryGetValue("geo.region", out var region);
            foreach (var scope in resourceSpans.ScopeSpans)
            {
                foreach (var span in scope.Spans)
                {
                    _spans.Enqueue(new ReceivedSpan(service ?? "?", region, scope.Scope?.Name ?? "", span.Name,
                        Convert.ToHexStringLower(span.TraceId.Span), Convert.ToHexStringLower(span.SpanId.Span), Convert.ToHexStringLower(span.ParentSpanId.Span),
                        span.Kind, Attributes(span.Attributes), [.. span.Links.Select(l => (Convert.ToHexStringLower(l.TraceId.Span), Convert.ToHexStringLower(l.SpanId.Span)))], resource));
                }
            }
        }
    }

    private static Dictionary<string, string> Attributes(IEnumerable<KeyValue> attributes)
        => attributes.GroupBy(a => a.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Value switch
        {
            null => "",
            { ValueCase: AnyValue.ValueOneofCase.StringValue } v => v.StringValue,
            { ValueCase: AnyValue.ValueOneofCase.IntValue } v => v.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            { ValueCase: AnyValue.ValueOneofCase.BoolValue } v => v.BoolValue ? "true" : "false",
            { ValueCase: AnyValue.ValueOneofCase.DoubleValue } v => v.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => "",
        }, StringComparer.Ordinal);

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
    }
}
