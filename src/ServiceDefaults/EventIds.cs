namespace Geo.ServiceDefaults;

/// <summary>
/// Log event ids of Geo.ServiceDefaults (range 1000–1999, one block per feature). Every assembly has its own range,
/// listed in docs/operations.md ("Log event ids"), so no two messages in one process share an id.
/// </summary>
internal static class EventIds
{
    public const int UnhandledError = 1001;
    public const int DependencyUnavailable = 1002;
    public const int AuthDisabled = 1101;
    public const int PeerRefused = 1201;
    public const int Stopping = 1301;
}
