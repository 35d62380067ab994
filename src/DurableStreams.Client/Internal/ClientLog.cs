using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Client.Internal;

/// <summary>The client's log events (ids 6000–6099, from <see cref="LogEvents"/>) and their templates.</summary>
internal static partial class ClientLog
{
    [LoggerMessage(EventId = LogEvents.ClientRequestStarting, Level = LogLevel.Debug, Message = "{Method} {Url}")]
    public static partial void RequestStarting(ILogger logger, HttpMethod method, Uri? url);

    [LoggerMessage(EventId = LogEvents.ClientResponseReceived, Level = LogLevel.Debug, Message = "{Status} {Reason} for {Method} {Url} in {ElapsedMilliseconds} ms")]
    public static partial void ResponseReceived(ILogger logger, int status, string? reason, HttpMethod method, Uri? url, long elapsedMilliseconds);

    [LoggerMessage(EventId = LogEvents.ClientRequestFailed, Level = LogLevel.Debug, Message = "No response for {Method} {Url} after {ElapsedMilliseconds} ms: {Reason}")]
    public static partial void RequestFailed(ILogger logger, HttpMethod method, Uri? url, long elapsedMilliseconds, string reason);

    [LoggerMessage(EventId = LogEvents.ClientRetrying, Level = LogLevel.Information, Message = "Retrying in {DelayMilliseconds} ms after attempt {Attempt} failed: {Reason}")]
    public static partial void Retrying(ILogger logger, long delayMilliseconds, int attempt, string reason);
}
