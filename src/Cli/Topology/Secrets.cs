using System.Data.Common;

namespace Geo.Cli.Topology;

/// <summary>Hides passwords in connection strings before geoctl prints them.</summary>
internal static class Secrets
{
    private const string Mask = "***";
    private static readonly string[] PasswordKeys = ["password", "pwd"];

    public static string RedactConnectionString(string connectionString)
    {
        var builder = new DbConnectionStringBuilder();
        try
        {
            builder.ConnectionString = connectionString;
        }
        catch (ArgumentException)
        {
            return Mask; // Unparseable: better to show nothing than a secret.
        }

        foreach (var key in builder.Keys.Cast<string>().Where(k => PasswordKeys.Contains(k, StringComparer.OrdinalIgnoreCase)).ToList())
        {
            builder[key] = Mask;
        }

        return builder.ConnectionString;
    }

    /// <summary>StackExchange.Redis configuration: comma-separated, <c>password=</c> option.</summary>
    public static string RedactRedis(string configuration) =>
        string.Join(',', configuration.Split(',').Select(part =>
            part.TrimStart().StartsWith("password=", StringComparison.OrdinalIgnoreCase) ? "password=" + Mask : part));
}
