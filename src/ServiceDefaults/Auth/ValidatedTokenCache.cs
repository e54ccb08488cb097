using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.IdentityModel.Tokens;

namespace Geo.ServiceDefaults.Auth;

/// <summary>
/// A token handler that remembers the bearer tokens it has fully validated, so a caller that sends the same token again
/// is not charged the signature check (about a fifth of the API's CPU for a small write) on every request. It wraps the
/// JwtBearer scheme's own handler and changes no rule:
/// <list type="bullet">
/// <item>only a token that passed every check (signature, algorithm, issuer, audience, lifetime) is remembered, keyed by
/// its exact text: any other text, a tampered one included, goes to the full validation;</item>
/// <item>a remembered token is served until the earlier of its own <c>exp</c> (without the clock-skew allowance the full
/// check grants) and <see cref="GeoAuthOptions.TokenCacheMaxAge"/> after it was validated; then it is validated again;</item>
/// <item>a remembered token is served only while the key that verified it is still among the scheme's keys, so a key
/// removed from the issuer's key set stops its tokens at the next refresh of the keys;</item>
/// <item>at most <see cref="GeoAuthOptions.TokenCacheSize"/> tokens are held; when full, expired ones are dropped and,
/// if that is not enough, all of them.</item>
/// </list>
/// Each hit hands out its own copy of the claims identity. See docs/security.md, "Validated tokens".
/// </summary>
public sealed class ValidatedTokenCache : TokenHandler
{
    private readonly TokenHandler inner;
    private readonly TimeProvider time;
    private readonly int capacity;
    private readonly TimeSpan maxAge;
    private readonly ConcurrentDictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private int count;

    public ValidatedTokenCache(TokenHandler inner, TimeProvider time, int capacity, TimeSpan maxAge)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(maxAge, TimeSpan.Zero);
        this.inner = inner;
        this.time = time;
        this.capacity = capacity;
        this.maxAge = maxAge;
    }

    /// <summary>Tokens served from memory since start.</summary>
    public long Hits => Interlocked.Read(ref hits);

    /// <summary>Tokens held now.</summary>
    public int Count => Volatile.Read(ref count);

    private long hits;

    public override SecurityToken ReadToken(string token) => inner.ReadToken(token);

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        ArgumentNullException.ThrowIfNull(validationParameters);
        var now = time.GetUtcNow();
        if (token is not null && entries.TryGetValue(token, out var entry))
        {
            if (now < entry.ServeUntil && StillTrusted(entry.Key, validationParameters))
            {
                Interlocked.Increment(ref hits);
                return new TokenValidationResult
                {
                    IsValid = true,
                    ClaimsIdentity = entry.Identity.Clone(),
                    SecurityToken = entry.Token,
                    Issuer = entry.Issuer,
                    TokenType = entry.TokenType,
                };
            }

            Remove(token);
        }

        var result = await inner.ValidateTokenAsync(token, validationParameters).ConfigureAwait(false);
        if (token is not null && result.IsValid && result.ClaimsIdentity is { } identity && result.SecurityToken is { } validated)
        {
            var serveUntil = Earlier(now + maxAge, validated.ValidTo);
            if (serveUntil > now)
            {
                Add(token, new Entry(identity.Clone(), validated, validated.SigningKey, result.Issuer, result.TokenType, serveUntil), now);
            }
        }

        return result;
    }

    private void Add(string token, Entry entry, DateTimeOffset now)
    {
        if (Volatile.Read(ref count) >= capacity)
        {
            foreach (var (key, held) in entries)
            {
                if (held.ServeUntil <= now)
                {
                    Remove(key);
                }
            }

            if (Volatile.Read(ref count) >= capacity)
            {
                foreach (var key in entries.Keys)
                {
                    Remove(key);
                }
            }
        }

        if (entries.TryAdd(token, entry))
        {
            Interlocked.Increment(ref count);
        }
    }

    private void Remove(string token)
    {
        if (entries.TryRemove(token, out _))
        {
            Interlocked.Decrement(ref count);
        }
    }

    // The key that verified the token must still be one the scheme would use: the fixed key, or one of the keys the
    // issuer's metadata currently lists (by key id where both have one, else the same key object).
    private static bool StillTrusted(SecurityKey? key, TokenValidationParameters parameters)
    {
        if (key is null)
        {
            return false;
        }

        return Same(key, parameters.IssuerSigningKey) || (parameters.IssuerSigningKeys?.Any(k => Same(key, k)) ?? false);
    }

    private static bool Same(SecurityKey key, SecurityKey? other) => other is not null
        && (ReferenceEquals(key, other) || (!string.IsNullOrEmpty(key.KeyId) && string.Equals(key.KeyId, other.KeyId, StringComparison.Ordinal)));

    // SecurityToken.ValidTo is UTC, DateTime.MinValue when the token has no exp (the full check refuses those).
    private static DateTimeOffset Earlier(DateTimeOffset a, DateTime validTo)
    {
        if (validTo == DateTime.MinValue)
        {
            return DateTimeOffset.MinValue;
        }

        var expires = new DateTimeOffset(DateTime.SpecifyKind(validTo, DateTimeKind.Utc));
        return expires < a ? expires : a;
    }

    private sealed record Entry(ClaimsIdentity Identity, SecurityToken Token, SecurityKey? Key, string? Issuer, string? TokenType, DateTimeOffset ServeUntil);
}
