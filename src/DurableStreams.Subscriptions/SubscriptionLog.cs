using Microsoft.Extensions.Logging;

namespace DurableStreams.Subscriptions;

/// <summary>The subscription engine's log events, in one place.</summary>
internal static partial class SubscriptionLog
{
    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Webhook delivery for subscription {Id} failed (status {Status})")]
    public static partial void WebhookFailed(ILogger logger, Exception? exception, string id, int status);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Subscription {Id} could not append a wake event to {WakeStream}: {Status}")]
    public static partial void WakeStreamFailed(ILogger logger, string id, string wakeStream, string status);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Error, Message = "Evaluating subscription {Id} failed")]
    public static partial void EvaluateFailed(ILogger logger, Exception exception, string id);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Warning, Message = "Reading shared subscription state failed")]
    public static partial void SharedStateFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Webhook delivery for subscription {Id} failed: the response body is larger than {Limit} bytes")]
    public static partial void WebhookResponseTooLarge(ILogger logger, string id, int limit);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Warning, Message = "Updating subscription links after a change to stream {Name} failed")]
    public static partial void LinkFailed(ILogger logger, Exception exception, string name);
}
