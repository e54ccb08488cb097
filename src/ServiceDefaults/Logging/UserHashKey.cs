using Geo.Core.Logging;
using Microsoft.Extensions.Configuration;

namespace Geo.ServiceDefaults.Logging;

/// <summary><c>Geo:Logging:UserHashKey</c> (base64, at least 16 bytes; from the secret store) keys <see cref="UserLogName"/>.</summary>
public static class UserHashKey
{
    public const string Setting = "Geo:Logging:UserHashKey";

    public static void Configure(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration[Setting] is not { Length: > 0 } text)
        {
            return;
        }

        byte[] key;
        try
        {
            key = Convert.FromBase64String(text);
        }
        catch (FormatException e)
        {
            throw new InvalidOperationException($"{Setting} is not base64; generate one with: openssl rand -base64 32", e);
        }

        if (key.Length < 16)
        {
            throw new InvalidOperationException($"{Setting} holds {key.Length} bytes; use at least 16 (openssl rand -base64 32).");
        }

        UserLogName.Configure(key);
    }
}
