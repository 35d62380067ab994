using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Subscriptions;

/// <summary>The subscription engine's log events, in one place.</summary>
internal static partial class SubscriptionLog
{
    [LoggerMessage(EventId = LogEvents.WebhookDeliveryFailed, Level = LogLevel.Warning, Message = "Webhook delivery for subscription {Id} failed (status {Status})")]
    public static partial void WebhookFailed(ILogger logger, Exception? exception, string id, int status);

    [LoggerMessage(EventId = LogEvents.WakeEventAppendFailed, Level = LogLevel.Warning, Message = "Subscription {Id} could not append a wake event to {WakeStream}: {Status}")]
    public static partial void WakeStreamFailed(ILogger logger, string id, string wakeStream, string status);

    [LoggerMessage(EventId = LogEvents.SubscriptionEvaluationFailed, Level = LogLevel.Error, Message = "Evaluating subscription {Id} failed")]
    public static partial void EvaluateFailed(ILogger logger, Exception exception, string id);

    [LoggerMessage(EventId = LogEvents.SharedStateReadFailed, Level = LogLevel.Warning, Message = "Reading shared subscription state failed")]
    public static partial void SharedStateFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = LogEvents.WebhookResponseTooLarge, Level = LogLevel.Warning, Message = "Webhook delivery for subscription {Id} failed: the response body is larger than {Limit} bytes")]
    public static partial void WebhookResponseTooLarge(ILogger logger, string id, int limit);

    [LoggerMessage(EventId = LogEvents.SubscriptionLinkFailed, Level = LogLevel.Warning, Message = "Updating subscription links after a change to stream {Name} failed")]
    public static partial void LinkFailed(ILogger logger, Exception exception, string name);
}
