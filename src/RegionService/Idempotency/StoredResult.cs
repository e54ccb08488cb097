using System.Text.Json;
using Geo.Storage;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Idempotency;

/// <summary>
/// Writes an <see cref="IdempotentResponse"/>: every write's response takes this form so the exact same bytes
/// can be stored with the write and replayed for a repeated Idempotency-Key.
/// </summary>
internal sealed class StoredResult(IdempotentResponse response, bool replayed) : IResult
{
    public const string ReplayedHeader = "Idempotent-Replayed";

    public IdempotentResponse Response => response;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var http = httpContext.Response;
        http.StatusCode = response.Status;
        foreach (var (name, value) in response.Headers)
        {
            http.Headers[name] = value;
        }

        if (replayed)
        {
            http.Headers[ReplayedHeader] = "true";
        }

        if (response.Body is { } body)
        {
            http.ContentType = response.Status >= 400 ? "application/problem+json" : "application/json; charset=utf-8";
            await http.WriteAsync(body, httpContext.RequestAborted);
        }
    }

    /// <summary>A JSON body response.</summary>
    public static IdempotentResponse Json<T>(int status, T body, IReadOnlyDictionary<string, string>? headers = null)
        => new(status, JsonSerializer.Serialize(body, JsonSerializerOptions.Web), headers ?? new Dictionary<string, string>());

    /// <summary>A problem, stored like any response (e.g. a 412 is replayed as a 412).</summary>
    public static IdempotentResponse Problem(ProblemHttpResult problem)
        => new(problem.StatusCode, JsonSerializer.Serialize(problem.ProblemDetails, JsonSerializerOptions.Web), new Dictionary<string, string>());

    /// <summary>A response without a body.</summary>
    public static IdempotentResponse Empty(int status, IReadOnlyDictionary<string, string>? headers = null)
        => new(status, null, headers ?? new Dictionary<string, string>());
}
