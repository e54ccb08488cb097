using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Geo.ServiceDefaults.Problems;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Geo.ServiceDefaults.Json;

/// <summary>
/// The limits a JSON request body must respect (docs/api.md, "Bodies"). Everything a body may contain can be stored
/// by PostgreSQL as <c>jsonb</c> and rendered back without growing past <see cref="MaxBytes"/>.
/// </summary>
/// <param name="MaxBytes">Largest body in bytes, and largest body once its numbers are written out in plain decimal.</param>
/// <param name="MaxDepth">Deepest nesting of objects and arrays.</param>
public sealed record JsonBodyLimits(int MaxBytes, int MaxDepth = JsonBodyLimits.DefaultMaxDepth)
{
    /// <summary>Default nesting limit of every Geo body.</summary>
    public const int DefaultMaxDepth = 64;

    /// <summary>Longest number token, in characters.</summary>
    public const int MaxNumberLength = 100;

    /// <summary>Largest decimal exponent (either sign) of a number, the range of an IEEE double.</summary>
    public const int MaxExponent = 308;
}

/// <summary>A body that passed every check: its UTF-8 bytes and the same text as a string.</summary>
public sealed record JsonBody(byte[] Utf8, string Text);

/// <summary>
/// Reads and checks a JSON request body, the one reader of the edge and the regional API. A body is refused with a
/// problem (never stored) when it is not JSON (415), too large (413), not valid UTF-8, malformed, nested too deep,
/// has a string with a lone surrogate or NUL, or a number outside <see cref="JsonBodyLimits"/> (400).
/// </summary>
public static class JsonBodyReader
{
    /// <summary>Reads the whole body (at most <see cref="JsonBodyLimits.MaxBytes"/>) and checks it.</summary>
    public static async Task<(JsonBody? Body, ProblemHttpResult? Problem)> ReadAsync(HttpRequest request, JsonBodyLimits limits, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(limits);
        if (!IsJson(request.ContentType))
        {
            return (null, GeoProblems.Create(StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
                $"Send the body as application/json (got '{request.ContentType ?? "none"}')."));
        }

        if (request.ContentLength > limits.MaxBytes)
        {
            return (null, TooLarge(limits.MaxBytes));
        }

        var buffer = ArrayPool<byte>.Shared.Rent(limits.MaxBytes + 1);
        try
        {
            var length = 0;
            int read;
            while (length <= limits.MaxBytes && (read = await request.Body.ReadAsync(buffer.AsMemory(length, limits.MaxBytes + 1 - length), ct)) > 0)
            {
                length += read;
            }

            if (length > limits.MaxBytes)
            {
                return (null, TooLarge(limits.MaxBytes));
            }

            var bytes = buffer.AsSpan(0, length).ToArray();
            return Check(bytes, limits) is { } problem ? (null, problem) : (new JsonBody(bytes, Encoding.UTF8.GetString(bytes)), null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Checks a body already in memory; null when it is acceptable.</summary>
    public static ProblemHttpResult? Check(ReadOnlySpan<byte> utf8, JsonBodyLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        if (!Utf8.IsValid(utf8))
        {
            return Invalid("invalid-utf8", "Invalid UTF-8", "The body is not valid UTF-8.");
        }

        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = limits.MaxDepth });
        long stored = utf8.Length;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.String or JsonTokenType.PropertyName when reader.ValueIsEscaped:
                        if (CheckEscapes(reader.ValueSpan) is { } bad)
                        {
                            return Invalid("invalid-string", "Invalid string", $"A JSON string at byte {reader.TokenStartIndex} {bad}.");
                        }

                        break;
                    case JsonTokenType.Number:
                        if (!TryMeasureNumber(reader.ValueSpan, out var rendered))
                        {
                            return Invalid("number-out-of-range", "Number out of range",
                                $"The number at byte {reader.TokenStartIndex} is longer than {JsonBodyLimits.MaxNumberLength} characters "
                                + $"or its exponent is beyond ±{JsonBodyLimits.MaxExponent}.");
                        }

                        stored += rendered - reader.ValueSpan.Length;
                        break;
                }
            }
        }
        catch (JsonException ex)
        {
            return Invalid("malformed-json", "Malformed JSON", $"The body is not valid JSON: {ex.Message}");
        }

        return stored > limits.MaxBytes
            ? GeoProblems.Create(StatusCodes.Status413PayloadTooLarge, "body-too-large", "Body too large",
                $"With its numbers written out in plain decimal, as they are stored, the body exceeds the limit of {limits.MaxBytes} bytes.")
            : null;
    }

    /// <summary>A reason when an escaped string has a lone surrogate or a NUL (neither can be stored); null when fine.</summary>
    private static string? CheckEscapes(ReadOnlySpan<byte> raw)
    {
        var pendingHigh = false;
        for (var i = 0; i < raw.Length; i++)
        {
            if (raw[i] != (byte)'\\')
            {
                if (pendingHigh)
                {
                    return "has a lone surrogate (\\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF)";
                }

                continue;
            }

            var escape = raw[++i];
            if (escape != (byte)'u')
            {
                if (pendingHigh)
                {
                    return "has a lone surrogate (\\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF)";
                }

                continue;
            }

            // The reader has checked the syntax: four hex digits follow.
            var unit = (Hex(raw[i + 1]) << 12) | (Hex(raw[i + 2]) << 8) | (Hex(raw[i + 3]) << 4) | Hex(raw[i + 4]);
            i += 4;
            if (unit == 0)
            {
                return "contains \\u0000, which cannot be stored";
            }

            var isHigh = unit is >= 0xD800 and <= 0xDBFF;
            var isLow = unit is >= 0xDC00 and <= 0xDFFF;
            if (pendingHigh != isLow)
            {
                return "has a lone surrogate (\\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF)";
            }

            pendingHigh = isHigh;
        }

        return pendingHigh ? "has a lone surrogate (\\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF)" : null;
    }

    private static int Hex(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        _ => c - 'A' + 10,
    };

    /// <summary>
    /// Measures a number token (syntax already checked by the reader) as PostgreSQL renders it: sign, integer digits
    /// shifted by the exponent, then the fraction digits the exponent leaves (an upper bound). False when the token is
    /// too long or its exponent out of range.
    /// </summary>
    internal static bool TryMeasureNumber(ReadOnlySpan<byte> token, out long rendered)
    {
        rendered = 0;
        if (token.Length > JsonBodyLimits.MaxNumberLength)
        {
            return false;
        }

        var i = 0;
        var sign = token[0] == (byte)'-' ? 1 : 0;
        i += sign;
        var integerDigits = 0;
        while (i < token.Length && char.IsAsciiDigit((char)token[i]))
        {
            integerDigits++;
            i++;
        }

        var fractionDigits = 0;
        if (i < token.Length && token[i] == (byte)'.')
        {
            i++;
            while (i < token.Length && char.IsAsciiDigit((char)token[i]))
            {
                fractionDigits++;
                i++;
            }
        }

        var exponent = 0;
        if (i < token.Length && (token[i] | 0x20) == (byte)'e')
        {
            i++;
            var negative = token[i] == (byte)'-';
            if (token[i] is (byte)'-' or (byte)'+')
            {
                i++;
            }

            for (; i < token.Length; i++)
            {
                exponent = (exponent * 10) + (token[i] - '0');
                if (exponent > JsonBodyLimits.MaxExponent + JsonBodyLimits.MaxNumberLength)
                {
                    return false;
                }
            }

            exponent = negative ? -exponent : exponent;
        }

        // The position of the first significant digit decides the magnitude: 0.001e2 is 1e-1.
        var magnitude = integerDigits + exponent - 1;
        if (Math.Abs(magnitude) > JsonBodyLimits.MaxExponent && !IsZero(token))
        {
            return false;
        }

        var scale = Math.Max(0, fractionDigits - exponent);
        rendered = sign + Math.Max(1, integerDigits + exponent) + (scale > 0 ? 1 + scale : 0);
        return true;
    }

    private static bool IsZero(ReadOnlySpan<byte> token)
    {
        foreach (var c in token)
        {
            if (c is (byte)'e' or (byte)'E')
            {
                return true;
            }

            if (c is >= (byte)'1' and <= (byte)'9')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>True for <c>application/json</c> and any <c>+json</c> media type.</summary>
    public static bool IsJson(string? contentType)
        => MediaTypeHeaderValue.TryParse(contentType, out var media)
            && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase));

    private static ProblemHttpResult TooLarge(int maxBytes)
        => GeoProblems.Create(StatusCodes.Status413PayloadTooLarge, "body-too-large", "Body too large", $"The body exceeds the limit of {maxBytes} bytes.");

    private static ProblemHttpResult Invalid(string slug, string title, string detail)
        => GeoProblems.Create(StatusCodes.Status400BadRequest, slug, title, detail);
}
