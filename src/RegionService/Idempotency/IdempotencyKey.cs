using System.Security.Cryptography;
using System.Text;
using Geo.RegionService.Api;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Geo.RegionService.Idempotency;

/// <summary>The Idempotency-Key header (docs/api.md): its rules and the hash that tells a replay from another request.</summary>
internal static class IdempotencyKey
{
    public const string Header = "Idempotency-Key";
    public const int MaxLength = 256;

    /// <summary>The request's key; empty when absent.</summary>
    public static string Of(HttpRequest request) => request.Headers[Header].ToString();

    /// <summary>Keys are 1–256 printable ASCII characters (e.g. a UUID); empty (absent) passes.</summary>
    public static ProblemHttpResult? Check(string key)
        => key.Length <= MaxLength && key.All(c => c is >= ' ' and <= '~')
            ? null
            : RegionProblems.InvalidRequest($"Idempotency-Key must be 1-{MaxLength} printable ASCII characters (a UUID is a good key).");

    /// <summary>What a repeat must match to be a replay: method, path, preconditions and body.</summary>
    public static byte[] RequestHash(HttpRequest request, string? body)
        => SHA256.HashData(Encoding.UTF8.GetBytes($"{request.Method}\n{request.Path}\n{request.Headers.IfMatch}\n{body}" + (request.Headers.IfNoneMatch.Count > 0 ? $"\n{request.Headers.IfNoneMatch}" : "")));
}
