using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Geo.ServiceDefaults.Problems;

/// <summary>Turns every error that escapes an endpoint, and every bare status code, into problem+json.</summary>
public static partial class ProblemDetailsExtensions
{
    /// <summary>
    /// Bad requests that Kestrel or model binding reject (oversized body, malformed headers) answer with their own
    /// status; anything else unexpected is logged once here and answers 500 without internals.
    /// </summary>
    public static WebApplication UseGeoProblemDetails(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Geo.Errors");
        app.UseExceptionHandler(handler => handler.Run(async context =>
        {
            var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            if (error is BadHttpRequestException bad)
            {
                var slug = bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "body-too-large" : "bad-request";
                await GeoProblems.WriteAsync(context, bad.StatusCode, slug, "Bad request", bad.Message);
                return;
            }

            if (error is OperationCanceledException && context.RequestAborted.IsCancellationRequested)
            {
                return;
            }

            if (IsUnavailable(error))
            {
                // A dependency that is down or saturated (pool exhausted, timeout, open breaker) is an expected fault
                // answered with a retryable 503: a warning, not an error.
                LogUnavailable(logger, error!, context.Request.Method, LogPaths.Template(context.Request.Path));
                context.Response.Headers.RetryAfter = "1";
                await GeoProblems.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "dependency-unavailable", "Service unavailable",
                    "A dependency (database or peer) is unavailable or timed out; retry shortly.");
                return;
            }

            if (error is not null)
            {
                LogUnexpected(logger, error, context.Request.Method, LogPaths.Template(context.Request.Path));
            }

            await GeoProblems.WriteAsync(context, StatusCodes.Status500InternalServerError, "internal", "Internal error",
                "An unexpected error occurred; it has been logged.");
        }));
        app.UseStatusCodePages(async status =>
        {
            var code = status.HttpContext.Response.StatusCode;
            var slug = code switch
            {
                StatusCodes.Status404NotFound => "not-found",
                StatusCodes.Status405MethodNotAllowed => "method-not-allowed",
                // Routing answers 415 itself when a body's content type is not one an endpoint accepts (its Accepts
                // metadata, which also feeds the OpenAPI document): the same problem type the body reader gives.
                StatusCodes.Status415UnsupportedMediaType => "unsupported-media-type",
                StatusCodes.Status413PayloadTooLarge => "body-too-large",
                _ => "status-" + code,
            };
            await GeoProblems.WriteAsync(status.HttpContext, code, slug, ReasonPhrase(code), $"The request was answered with status {code}.");
        });
        return app;
    }

    private static bool IsUnavailable(Exception? error)
        => error is TimeoutException or Polly.Timeout.TimeoutRejectedException or Polly.CircuitBreaker.BrokenCircuitException
            or System.Net.Sockets.SocketException
            || (error is System.Data.Common.DbException db && db.IsTransient)
            || (error?.InnerException is { } inner && IsUnavailable(inner));

    private static string ReasonPhrase(int code) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(code) is { Length: > 0 } p ? p : "Error";

    [LoggerMessage(EventId = EventIds.DependencyUnavailable, Level = LogLevel.Warning, Message = "Dependency unavailable in {Method} {Path}; answered 503")]
    private static partial void LogUnavailable(ILogger logger, Exception exception, string method, string path);

    [LoggerMessage(EventId = EventIds.UnhandledError, Level = LogLevel.Error, Message = "Unhandled error in {Method} {Path}")]
    private static partial void LogUnexpected(ILogger logger, Exception exception, string method, string path);
}
