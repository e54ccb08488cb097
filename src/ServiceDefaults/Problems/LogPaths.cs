using Microsoft.AspNetCore.Http;

namespace Geo.ServiceDefaults.Problems;

/// <summary>A request path as logs may show it: the API's route template, never a user id, collection or key.</summary>
public static class LogPaths
{
    /// <summary><c>/v1/users/{userId}/docs/{collection}/{key}</c> and the like; paths outside <c>/v1</c> as they are (at most 64 characters).</summary>
    public static string Template(PathString path)
    {
        var value = path.Value ?? string.Empty;
        if (!path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            return value.Length <= 64 ? value : value[..64] + "…";
        }

        var segments = value.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length < 2 || segments[1] != "users")
        {
            return "/v1/{…}";
        }

        var template = "/v1/users";
        if (segments.Length > 2)
        {
            template += "/{userId}";
        }

        if (segments.Length > 3)
        {
            template += segments[3] switch
            {
                "docs" => segments.Length > 5 ? "/docs/{collection}/{key}" : segments.Length > 4 ? "/docs/{collection}" : "/docs",
                "counters" => segments.Length > 4 ? "/counters/{name}" : "/counters",
                _ => "/{…}",
            };
        }

        return template;
    }
}
