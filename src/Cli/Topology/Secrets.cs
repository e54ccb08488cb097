using System.Text.RegularExpressions;

namespace Geo.Cli.Topology;

/// <summary>Hides passwords in connection strings before geoctl prints them, leaving the rest as written.</summary>
internal static partial class Secrets
{
    private const string Mask = "***";

    /// <summary>ADO.NET style (<c>Password=...;</c> or <c>Pwd=...</c>, quoted or not).</summary>
    public static string RedactConnectionString(string connectionString) =>
        AdoPassword().Replace(connectionString, m => $"{m.Groups["key"].Value}{Mask}");

    /// <summary>StackExchange.Redis configuration: comma-separated, <c>password=</c> option.</summary>
    public static string RedactRedis(string configuration) =>
        RedisPassword().Replace(configuration, m => $"{m.Groups["key"].Value}{Mask}");

    [GeneratedRegex("""(?<key>(?:^|;)\s*(?:password|pwd)\s*=\s*)(?:"[^"]*"|'[^']*'|[^;]*)""", RegexOptions.IgnoreCase)]
    private static partial Regex AdoPassword();

    [GeneratedRegex("""(?<key>(?:^|,)\s*password\s*=)[^,]*""", RegexOptions.IgnoreCase)]
    private static partial Regex RedisPassword();
}
