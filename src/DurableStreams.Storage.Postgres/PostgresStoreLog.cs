using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// The PostgreSQL store's log events (ids 4000–4099), one place for their ids and templates. None of these failures
/// loses acknowledged data: each names how the store recovers from it.
/// </summary>
internal static partial class PostgresStoreLog
{
    [LoggerMessage(EventId = LogEvents.ListenerLost, Level = LogLevel.Warning,
        Message = "The cross-node wake listener lost (or could not open) its PostgreSQL connection; reconnecting every {RetryMilliseconds} ms (long-polls and SSE readers on this node see other nodes' appends only at their timeout meanwhile)")]
    public static partial void ListenerLost(ILogger logger, Exception exception, long retryMilliseconds);

    [LoggerMessage(EventId = LogEvents.ListenerReconnectFailed, Level = LogLevel.Debug, Message = "The cross-node wake listener could not reconnect to PostgreSQL (attempt {Attempt}); retrying in {RetryMilliseconds} ms")]
    public static partial void ListenerReconnectFailed(ILogger logger, Exception exception, int attempt, long retryMilliseconds);

    [LoggerMessage(EventId = LogEvents.ListenerReconnected, Level = LogLevel.Information, Message = "The cross-node wake listener is connected to PostgreSQL again after {Failures} failures; every waiter re-checks")]
    public static partial void ListenerReconnected(ILogger logger, int failures);

    [LoggerMessage(EventId = LogEvents.WakeNotifyFailed, Level = LogLevel.Warning, Message = "Could not notify other nodes of {Count} committed streams; their waiters see the appends at their timeout")]
    public static partial void WakeNotifyFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = LogEvents.SubscriptionNotifyFailed, Level = LogLevel.Warning, Message = "Could not notify other nodes that subscription {SubscriptionId} changed; they re-read all subscriptions when their listener reconnects")]
    public static partial void SubscriptionNotifyFailed(ILogger logger, Exception exception, string subscriptionId);

    [LoggerMessage(EventId = LogEvents.ExpirySweepFailed, Level = LogLevel.Warning, Message = "The expiry sweep failed; the next sweep tries again (every access checks expiry itself)")]
    public static partial void SweepFailed(ILogger logger, Exception exception);
}
