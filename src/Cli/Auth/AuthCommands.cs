using System.CommandLine;
using System.Globalization;
using Geo.Cli.CommandLine;
using Geo.Core.Topology;
using Geo.ServiceDefaults.Auth;

namespace Geo.Cli.Auth;

/// <summary>
/// <c>geoctl auth dev-issuer</c> (the local development issuer's key pair) and <c>geoctl auth token</c> (one token
/// signed by it, alone on stdout). Development only: a deployment's tokens come from its identity provider.
/// </summary>
internal static class AuthCommands
{
    public const string SecretsVariable = "GEO_SECRETS_DIR";

    /// <summary>The scopes of a service token (<c>--service</c>).</summary>
    internal static readonly string[] ServiceScopes = [GeoScopes.Read, GeoScopes.Write, GeoScopes.UsersCreate];

    public static Command Create(CliHost host, GlobalOptions globals)
    {
        var dir = new Option<string?>("--dir")
        {
            Description = $"Folder of the development issuer's keys. Default: ${SecretsVariable}, else .geo/secrets of the checkout (found by walking up to config/topology.local.json).",
            HelpName = "dir",
            Recursive = true,
        };

        var issuer = new Command("dev-issuer", "Create the development issuer's key pair unless it exists; prints the public key file every local service trusts.");
        issuer.SetAction(p =>
        {
            var context = new CommandContext(p, host, globals);
            context.WriteLine(DevelopmentIssuer.EnsureKeyFiles(SecretsDirectory(context, p.GetValue(dir))));
            return ExitCodes.Ok;
        });

        var user = new Option<string?>("--user") { Description = "A user token bound to this Geo user id (read and write that user only).", HelpName = "user-id" };
        var service = new Option<bool>("--service") { Description = $"A service token: scopes {GeoScopes.Read} {GeoScopes.Write} {GeoScopes.UsersCreate}, every jurisdiction of the topology." };
        var admin = new Option<bool>("--admin") { Description = $"An admin token (scope {GeoScopes.Admin})." };
        var jurisdiction = new Option<string[]>("--jurisdiction")
        {
            Description = "Narrow a service token to this jurisdiction (repeatable; e.g. eu, us, global).",
            HelpName = "j",
            AllowMultipleArgumentsPerToken = false,
            DefaultValueFactory = _ => [],
        };
        var scope = new Option<string[]>("--scope")
        {
            Description = $"Add this scope (repeatable; e.g. {GeoScopes.Erase}).",
            HelpName = "scope",
            DefaultValueFactory = _ => [],
        };
        var ttl = new Option<string>("--ttl") { Description = "Lifetime: 90s, 30m, 12h or hh:mm:ss.", DefaultValueFactory = _ => "1h", HelpName = "duration" };
        var subject = new Option<string?>("--subject") { Description = "The token's sub (default: geo-dev-service, geo-dev-admin, or user:ID).", HelpName = "sub" };
        var token = new Command("token", "Print one development token, alone on stdout, e.g. -H \"authorization: Bearer $(./geo ctl auth token --service)\".")
        {
            user, service, admin, jurisdiction, scope, ttl, subject,
        };
        token.SetAction(p => Token(new CommandContext(p, host, globals), p.GetValue(dir), p.GetValue(user), p.GetValue(service), p.GetValue(admin),
            p.GetValue(jurisdiction) ?? [], p.GetValue(scope) ?? [], p.GetValue(ttl)!, p.GetValue(subject)));

        return new Command("auth", "Credentials: the development issuer, tokens, and the mutual-TLS certificates.") { dir, issuer, token, CertsCommand.Create(host, globals) };
    }

    private static int Token(CommandContext context, string? dir, string? user, bool service, bool admin, string[] jurisdictions, string[] scopes,
        string ttlText, string? subject)
    {
        var kinds = (user is not null ? 1 : 0) + (service ? 1 : 0) + (admin ? 1 : 0);
        if (kinds != 1)
        {
            throw new GeoCliException(ExitCodes.Usage, "Choose exactly one of --user USER_ID, --service, --admin.");
        }

        var ttl = ParseTtl(ttlText);
        var issuer = LoadIssuer(SecretsDirectory(context, dir));
        string jwt;
        if (user is not null)
        {
            if (jurisdictions.Length > 0)
            {
                throw new GeoCliException(ExitCodes.Usage, "--jurisdiction applies to service tokens; a user token is bound to its user.");
            }

            jwt = scopes.Length == 0
                ? issuer.UserToken(user, ttl, subject)
                : issuer.Sign(new Dictionary<string, object> { [GeoClaims.User] = user, [GeoClaims.Scope] = string.Join(' ', scopes) }, subject ?? "user:" + user, ttl);
        }
        else
        {
            var topology = context.LoadTopology();
            var known = Reach(topology);
            foreach (var j in jurisdictions.Where(j => !known.Contains(j, StringComparer.Ordinal)))
            {
                throw new GeoCliException(ExitCodes.Usage, $"--jurisdiction '{j}' is not one of the topology's: {string.Join(", ", known)}.");
            }

            var granted = (service ? ServiceScopes : [GeoScopes.Admin]).Concat(scopes);
            jwt = issuer.ServiceToken(granted, jurisdictions.Length > 0 ? jurisdictions : known, ttl, subject ?? (service ? "geo-dev-service" : "geo-dev-admin"));
        }

        context.WriteLine(jwt);
        return ExitCodes.Ok;
    }

    /// <summary>Every jurisdiction of the topology and <c>global</c>: what a service token reaches unless narrowed.</summary>
    internal static List<string> Reach(GeoTopology topology) => [.. topology.Jurisdictions.Append(GeoTopology.GlobalResidency)];

    private static DevelopmentIssuer LoadIssuer(string dir)
    {
        try
        {
            return DevelopmentIssuer.Load(dir);
        }
        catch (FileNotFoundException e)
        {
            throw GeoCliException.NotFound(e.Message);
        }
    }

    private static string SecretsDirectory(CommandContext context, string? dir)
    {
        if ((dir ?? context.Environment(SecretsVariable)) is { } given)
        {
            return Path.GetFullPath(given, context.CurrentDirectory);
        }

        var topology = CommandContext.FindUpwards(context.CurrentDirectory, Path.Combine("config", "topology.local.json"))
            ?? throw GeoCliException.NotFound($"No checkout above {context.CurrentDirectory} (config/topology.local.json); pass --dir or set {SecretsVariable}.");
        return Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(topology)!)!, ".geo", "secrets");
    }

    internal static TimeSpan ParseTtl(string text)
    {
        var value = text.Trim();
        TimeSpan ttl;
        if (value.Length > 1 && char.IsAsciiLetter(value[^1])
            && double.TryParse(value[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var amount))
        {
            ttl = char.ToLowerInvariant(value[^1]) switch
            {
                's' => TimeSpan.FromSeconds(amount),
                'm' => TimeSpan.FromMinutes(amount),
                'h' => TimeSpan.FromHours(amount),
                'd' => TimeSpan.FromDays(amount),
                _ => throw new GeoCliException(ExitCodes.Usage, $"--ttl '{text}': use a unit s, m, h or d (e.g. 30m)."),
            };
        }
        else if (!TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out ttl))
        {
            throw new GeoCliException(ExitCodes.Usage, $"--ttl '{text}' is not a duration such as 90s, 30m, 12h or 01:00:00.");
        }

        return ttl > TimeSpan.Zero && ttl <= TimeSpan.FromDays(30)
            ? ttl
            : throw new GeoCliException(ExitCodes.Usage, $"--ttl '{text}' must be more than zero and at most 30 days.");
    }
}
