using Geo.ServiceDefaults.Auth;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Geo.Cli.Tests.Auth;

public sealed class AuthCommandTests : IDisposable
{
    private readonly CliRunner _cli = new();
    private readonly TestTopologies _files = new();
    private readonly string _secrets;

    public AuthCommandTests()
    {
        _secrets = Path.Combine(_files.Directory, "secrets");
        _cli.Environment["GEO_SECRETS_DIR"] = _secrets;
    }

    public void Dispose() => _files.Dispose();

    [Fact]
    public async Task Dev_issuer_creates_a_private_key_only_its_owner_reads_and_keeps_it_on_rerun()
    {
        var first = await _cli.RunAsync("auth", "dev-issuer");
        Assert.Equal(0, first.ExitCode);
        var privateKey = Path.Combine(_secrets, DevelopmentIssuer.PrivateKeyFileName);
        Assert.Equal(Path.Combine(_secrets, DevelopmentIssuer.PublicKeyFileName), first.Stdout.Trim());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(privateKey));
        }

        var pem = await File.ReadAllTextAsync(privateKey, TestContext.Current.CancellationToken);

        Assert.Equal(0, (await _cli.RunAsync("auth", "dev-issuer")).ExitCode);
        Assert.Equal(pem, await File.ReadAllTextAsync(privateKey, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_service_token_has_the_default_scopes_and_every_jurisdiction_and_verifies_with_the_public_key()
    {
        var token = await TokenAsync("--service");
        var jwt = await ValidateAsync(token);
        Assert.Equal(["geo.read", "geo.users.create", "geo.write"], jwt.GetClaim("scope").Value.Split(' ').Order(StringComparer.Ordinal));
        Assert.Equal(["eu", "global", "us"], jwt.Claims.Where(c => c.Type == GeoClaims.Jurisdictions).Select(c => c.Value).Order(StringComparer.Ordinal));
        Assert.False(jwt.TryGetClaim(GeoClaims.User, out _));
    }

    [Fact]
    public async Task Jurisdiction_narrows_and_scope_widens_a_service_token()
    {
        var jwt = await ValidateAsync(await TokenAsync("--service", "--jurisdiction", "eu", "--scope", "geo.erase", "--ttl", "10m"));
        Assert.Contains("geo.erase", jwt.GetClaim("scope").Value.Split(' '));
        Assert.Equal(["eu"], jwt.Claims.Where(c => c.Type == GeoClaims.Jurisdictions).Select(c => c.Value));
        Assert.InRange(jwt.ValidTo - jwt.ValidFrom, TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10) + TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_user_token_names_its_user_and_an_admin_token_has_geo_admin()
    {
        var user = await ValidateAsync(await TokenAsync("--user", "0190f5f4-5a1e-7cc4-9b8e-2f1f3c7d9a10"));
        Assert.Equal("0190f5f4-5a1e-7cc4-9b8e-2f1f3c7d9a10", user.GetClaim(GeoClaims.User).Value);
        var admin = await ValidateAsync(await TokenAsync("--admin"));
        Assert.Equal("geo.admin", admin.GetClaim("scope").Value);
    }

    [Theory]
    [InlineData("--service", "--admin")]
    [InlineData("--service", "--jurisdiction", "mars")]
    [InlineData("--service", "--ttl", "forever")]
    [InlineData("--user", "u", "--jurisdiction", "eu")]
    public async Task Bad_combinations_are_usage_errors(params string[] args)
    {
        await _cli.RunAsync("auth", "dev-issuer");
        var result = await _cli.RunAsync(["auth", "token", "--topology", _files.Local(), .. args]);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task Without_a_dev_issuer_a_token_is_refused_with_not_found()
    {
        var result = await _cli.RunAsync("auth", "token", "--topology", _files.Local(), "--service");
        Assert.Equal(3, result.ExitCode);
        Assert.Contains("dev-issuer", result.Stderr, StringComparison.Ordinal);
    }

    private async Task<string> TokenAsync(params string[] args)
    {
        Assert.Equal(0, (await _cli.RunAsync("auth", "dev-issuer")).ExitCode);
        var result = await _cli.RunAsync(["auth", "token", "--topology", _files.Local(), .. args]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return Assert.Single(lines).Trim();
    }

    private async Task<JsonWebToken> ValidateAsync(string token)
    {
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = DevelopmentIssuer.Issuer,
            ValidAudience = DevelopmentIssuer.Audience,
            IssuerSigningKey = SigningKeys.LoadPublicKey(Path.Combine(_secrets, DevelopmentIssuer.PublicKeyFileName)),
            ValidAlgorithms = ["ES256"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }
}
