using Microsoft.Extensions.Options;

namespace Geo.ShardDirectory.Hosting;

/// <summary>Tuning of the directory service.</summary>
internal sealed class DirectoryOptions
{
    public const string SectionName = "Directory";

    /// <summary>A watch stream sends a heartbeat after this long without a map change. Default 5 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The map is re-read this often even without a notification (fallback for lost NOTIFYs). Default 3 s.</summary>
    public TimeSpan MapPollInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long a user entry stays in the in-process lookup cache. Default 30 s.</summary>
    public TimeSpan UserCacheTtl { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most entries the lookup cache holds. Default 100 000.</summary>
    public int UserCacheCapacity { get; set; } = 100_000;

    /// <summary>Replicated versions further than this ahead of the local clock are quarantined. Default 5 min.</summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Timeout of each directory database command. Default 5 s.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

internal sealed class DirectoryOptionsValidator : IValidateOptions<DirectoryOptions>
{
    public ValidateOptionsResult Validate(string? name, DirectoryOptions options)
    {
        var errors = new List<string>();
        Positive(errors, options.HeartbeatInterval, nameof(options.HeartbeatInterval), "00:00:05");
        Positive(errors, options.MapPollInterval, nameof(options.MapPollInterval), "00:00:03");
        Positive(errors, options.UserCacheTtl, nameof(options.UserCacheTtl), "00:00:30");
        Positive(errors, options.MaxClockSkew, nameof(options.MaxClockSkew), "00:05:00");
        Positive(errors, options.CommandTimeout, nameof(options.CommandTimeout), "00:00:05");
        if (options.UserCacheCapacity < 1)
        {
            errors.Add($"{DirectoryOptions.SectionName}:{nameof(options.UserCacheCapacity)}: {options.UserCacheCapacity} must be at least 1, e.g. 100000.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Positive(List<string> errors, TimeSpan value, string key, string example)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{DirectoryOptions.SectionName}:{key}: {value} must be positive; use a duration such as \"{example}\".");
        }
    }
}
