using Geo.ServiceDefaults.Auth;
using Geo.Testing.Services;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Geo.Security.Tests.PublicApi;

/// <summary>
/// The remembered validations of <see cref="ValidatedTokenCache"/> never accept what the full check would refuse: a
/// token past its expiry, a tampered copy, a token whose key left the key set. The full check's lifetime rule runs on the
/// same fake clock as the cache, so "later" is the same moment for both.
/// </summary>
public sealed class ValidatedTokenCacheTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.UtcNow;
    private readonly FakeTimeProvider time = new(Start);
    private readonly CountingHandler inner = new();

    [Fact]
    public async Task A_repeated_token_is_validated_in_full_once_and_each_caller_gets_its_own_identity()
    {
        var cache = NewCache();
        var token = UserToken(TimeSpan.FromMinutes(10));

        var first = await cache.ValidateTokenAsync(token, Parameters());
        var second = await cache.ValidateTokenAsync(token, Parameters());

        Assert.True(first.IsValid, first.Exception?.Message);
        Assert.True(second.IsValid, second.Exception?.Message);
        Assert.Equal(1, inner.Validations);
        Assert.Equal(1, cache.Hits);
        Assert.NotSame(first.ClaimsIdentity, second.ClaimsIdentity);
        Assert.Equal("u-1", second.ClaimsIdentity.FindFirst(GeoClaims.User)?.Value);
        Assert.Equal(first.ClaimsIdentity.Claims.Select(c => (c.Type, c.Value)), second.ClaimsIdentity.Claims.Select(c => (c.Type, c.Value)));
    }

    [Fact]
    public async Task A_remembered_token_is_refused_once_it_expires()
    {
        var cache = NewCache(maxAge: TimeSpan.FromHours(1));
        var token = UserToken(TimeSpan.FromSeconds(60));
        Assert.True((await cache.ValidateTokenAsync(token, Parameters())).IsValid);

        time.Advance(TimeSpan.FromSeconds(61));
        var late = await cache.ValidateTokenAsync(token, Parameters());

        Assert.False(late.IsValid);
        Assert.IsType<SecurityTokenExpiredException>(late.Exception);
        Assert.Equal(0, cache.Hits);
    }

    [Fact]
    public async Task A_remembered_token_is_validated_again_after_the_maximum_age()
    {
        var cache = NewCache(maxAge: TimeSpan.FromMinutes(1));
        var token = UserToken(TimeSpan.FromMinutes(10));
        await cache.ValidateTokenAsync(token, Parameters());

        time.Advance(TimeSpan.FromSeconds(61));
        var again = await cache.ValidateTokenAsync(token, Parameters());

        Assert.True(again.IsValid);
        Assert.Equal(2, inner.Validations);
    }

    [Fact]
    public async Task A_tampered_copy_of_a_remembered_token_is_refused()
    {
        var cache = NewCache();
        var token = UserToken(TimeSpan.FromMinutes(10));
        await cache.ValidateTokenAsync(token, Parameters());

        var parts = token.Split('.');
        var payload = Base64UrlEncoder.Decode(parts[1]).Replace("\"u-1\"", "\"u-2\"", StringComparison.Ordinal);
        var tampered = $"{parts[0]}.{Base64UrlEncoder.Encode(payload)}.{parts[2]}";
        var result = await cache.ValidateTokenAsync(tampered, Parameters());

        Assert.False(result.IsValid);
        Assert.IsType<SecurityTokenInvalidSignatureException>(result.Exception);
    }

    [Fact]
    public async Task A_token_whose_key_left_the_key_set_is_refused()
    {
        var cache = NewCache();
        var token = UserToken(TimeSpan.FromMinutes(10));
        await cache.ValidateTokenAsync(token, Parameters());

        var rotated = Parameters(SigningKeys.FromPem(SigningKeys.NewEcKeyPair().PublicPem, "rotated"));
        var result = await cache.ValidateTokenAsync(token, rotated);

        Assert.False(result.IsValid);
        Assert.Equal(0, cache.Hits);
    }

    [Fact]
    public async Task A_full_cache_keeps_validating_correctly_and_holds_no_more_than_its_size()
    {
        var cache = NewCache(capacity: 2);
        var tokens = Enumerable.Range(0, 5).Select(_ => UserToken(TimeSpan.FromMinutes(10))).ToList();

        foreach (var token in tokens.Concat(tokens))
        {
            Assert.True((await cache.ValidateTokenAsync(token, Parameters())).IsValid);
            Assert.InRange(cache.Count, 1, 2);
        }

        var expired = UserToken(TimeSpan.FromMinutes(10), issuedAt: Start.AddHours(-1));
        Assert.False((await cache.ValidateTokenAsync(expired, Parameters())).IsValid);
    }

    private ValidatedTokenCache NewCache(int capacity = 100, TimeSpan? maxAge = null)
        => new(inner, time, capacity, maxAge ?? TimeSpan.FromMinutes(5));

    private static string UserToken(TimeSpan ttl, DateTimeOffset? issuedAt = null)
        => TestCredentials.Issuer.Sign(new Dictionary<string, object> { [GeoClaims.User] = "u-1" }, "user:u-1", ttl, now: issuedAt ?? Start);

    private TokenValidationParameters Parameters(SecurityKey? key = null) => new()
    {
        ValidIssuer = DevelopmentIssuer.Issuer,
        ValidAudience = DevelopmentIssuer.Audience,
        IssuerSigningKey = key ?? TrustedKey,
        ValidAlgorithms = GeoAuthOptions.DefaultAlgorithms,
        RequireExpirationTime = true,
        ClockSkew = TimeSpan.Zero,
        // The full check's lifetime rule on the test's clock.
        LifetimeValidator = (notBefore, expires, _, _) => notBefore <= time.GetUtcNow().UtcDateTime && time.GetUtcNow().UtcDateTime < expires
            ? true
            : throw new SecurityTokenExpiredException("expired on the test clock"),
    };

    private static readonly SecurityKey TrustedKey = SigningKeys.LoadPublicKey(TestCredentials.PublicKeyFile);

    /// <summary>The JwtBearer scheme's own handler, counting the full validations it runs.</summary>
    private sealed class CountingHandler : TokenHandler
    {
        private readonly JsonWebTokenHandler handler = new() { MapInboundClaims = false };
        private int validations;

        public int Validations => Volatile.Read(ref validations);

        public override SecurityToken ReadToken(string token) => handler.ReadToken(token);

        public override Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
        {
            Interlocked.Increment(ref validations);
            return handler.ValidateTokenAsync(token, validationParameters);
        }
    }
}
