namespace DurableStreams.Protocol.Diagnostics;

/// <summary>
/// The event id of every log message the solution writes, kept in one table so ids stay unique across assemblies and an
/// operator can filter on them (docs/operations.md lists them). One range per part: 1000s the HTTP server, 2000s the
/// file store, 3000s <c>serve</c>, 4000s the PostgreSQL store, 5000s subscriptions, 6000s the client, 7000s retention. A published id
/// never changes meaning; a new message takes the next free id of its range.
/// </summary>
public static class LogEvents
{
    // The HTTP server (DurableStreams.Server).
    public const int UnhandledError = 1000;
    public const int LifecycleHookFailed = 1001;
    public const int RequestAnswered = 1002;
    public const int StoreUnavailable = 1003;
    public const int RequestBodyRefused = 1004;
    public const int CompactionRequested = 1090;

    // The file store (DurableStreams.Storage.Files).
    public const int GroupCommitFailed = 2000;
    public const int ChecksumFailed = 2001;
    public const int UnacknowledgedTailCut = 2002;
    public const int DataFileShort = 2003;
    public const int BackgroundWorkFailed = 2004;
    public const int AcknowledgedDataLost = 2005;
    public const int CommitLogReplayed = 2006;
    public const int PermissionsTightened = 2007;
    public const int ProducersMigrated = 2020;
    public const int HolePunchUnsupported = 2021;
    public const int StreamCompacted = 2030;
    public const int SnapshotFilesRemoved = 2031;
    public const int MetadataIndexed = 2032;

    // serve (DurableStreams.Cli).
    public const int ServerStarted = 3000;

    // The PostgreSQL store (DurableStreams.Storage.Postgres).
    public const int ListenerLost = 4000;
    public const int ListenerReconnectFailed = 4001;
    public const int ListenerReconnected = 4002;
    public const int WakeNotifyFailed = 4003;
    public const int SubscriptionNotifyFailed = 4004;
    public const int ExpirySweepFailed = 4005;

    // Subscriptions (DurableStreams.Subscriptions).
    public const int WebhookDeliveryFailed = 5001;
    public const int WakeEventAppendFailed = 5002;
    public const int SubscriptionEvaluationFailed = 5003;
    public const int SharedStateReadFailed = 5004;
    public const int WebhookResponseTooLarge = 5005;
    public const int SubscriptionLinkFailed = 5008;

    // The client (DurableStreams.Client).
    public const int ClientRequestStarting = 6000;
    public const int ClientResponseReceived = 6001;
    public const int ClientRequestFailed = 6002;
    public const int ClientRetrying = 6003;

    // Retention (DurableStreams.Core.Retention: the retention job).
    public const int RetentionStreamFailed = 7000;
    public const int RetentionPassFailed = 7001;
    public const int CompactionCompleted = 7002;
    public const int CompactionPartial = 7003;
    public const int CompactionTooLarge = 7004;
    public const int CompactionFailed = 7005;

    /// <summary>
    /// How a client event starts its line in a request trace (the tool's <c>-v</c>, the module's <c>-Verbose</c>):
    /// <c>"&gt; "</c> a request leaving, <c>"&lt; "</c> a response arriving, <c>"* "</c> anything else.
    /// </summary>
    public static string TracePrefix(int eventId) => eventId switch
    {
        ClientRequestStarting => "> ",
        ClientResponseReceived => "< ",
        _ => "* ",
    };
}
