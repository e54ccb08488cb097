namespace Geo.Replicator;

/// <summary>
/// Log event ids of the Replicator (range 4000–4999). Every assembly has its own range, listed in
/// docs/operations.md ("Log event ids"), so no two messages in one process share an id.
/// </summary>
internal static class EventIds
{
    public const int PeerConnected = 4001;
    public const int PeerFailed = 4002;
    public const int PeerBreakerOpen = 4003;
    public const int SenderHeld = 4004;
    public const int PeerRefused = 4010;
    public const int ChangesRefused = 4011;
    public const int ChangesQuarantined = 4012;
    public const int BatchHeld = 4013;
    public const int EntriesQuarantined = 4014;
    public const int ForgedEntries = 4015;
    public const int ResidencyChangeRefused = 4017;
    public const int InboundEnded = 4016;
    public const int AntiEntropyDivergent = 4020;
    public const int AntiEntropyFailed = 4021;
    public const int Pruned = 4030;
    public const int BackgroundFailed = 4031;
    public const int RetentionPass = 4032;
    public const int RetentionFailed = 4033;
    public const int UnsupportedChange = 4034;
    public const int PeerHeldUnsupported = 4035;
    public const int ProtocolMismatch = 4036;
    public const int Migrated = 4040;
    public const int MigrationRetry = 4041;
    public const int ShardAdded = 4043;
    public const int ShardsChanged = 4044;
    public const int EraseCompleted = 4050;
    public const int EraseDeferred = 4051;
    public const int EraseRoundFailed = 4052;
}
