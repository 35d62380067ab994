using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace DurableStreams.Client;

/// <summary>Why a request failed, derived from the HTTP status and protocol headers.</summary>
public enum DurableStreamErrorCode
{
    /// <summary>An unexpected status without a more specific meaning.</summary>
    Unknown,
    /// <summary>400: malformed request (headers, offset, JSON, empty body).</summary>
    BadRequest,
    /// <summary>401: missing or rejected credentials.</summary>
    Unauthorized,
    /// <summary>403 without producer headers.</summary>
    Forbidden,
    /// <summary>404: the stream (or fork source) does not exist.</summary>
    NotFound,
    /// <summary>405 or 501: the server does not support the operation on this URL.</summary>
    NotSupported,
    /// <summary>410: the stream was deleted or the offset is no longer retained.</summary>
    Gone,
    /// <summary>409: configuration or content-type conflict (a <c>Stream-Seq</c> conflict is <see cref="SequenceConflict"/>).</summary>
    Conflict,
    /// <summary>409 with <c>Stream-Closed: true</c>: the stream is closed to appends.</summary>
    StreamClosed,
    /// <summary>403 with <c>Producer-Epoch</c>: a newer producer epoch fenced this one.</summary>
    StaleEpoch,
    /// <summary>409 with <c>Producer-Expected-Seq</c>: the producer skipped a sequence number.</summary>
    SequenceGap,
    /// <summary>413: the body exceeds the server's maximum append size.</summary>
    PayloadTooLarge,
    /// <summary>429: rate limited.</summary>
    TooManyRequests,
    /// <summary>507: the server is out of storage; nothing was written.</summary>
    InsufficientStorage,
    /// <summary>5xx, a network failure or a timeout: the server could not be reached or could not answer.</summary>
    Unavailable,
    /// <summary>409 to an append with <c>Stream-Seq</c>: the writer sequence is not above the stream's last one.</summary>
    SequenceConflict,
    /// <summary>A response body or SSE event that is not valid (JSON, base64, a control event without its offset).</summary>
    ParseError,
    /// <summary>
    /// 410 with <c>Stream-Retained-Start</c>: the read's offset is below the stream's retained start (retention dropped
    /// that data); <see cref="DurableStreamException.RetainedStart"/> says where the data now starts. Never retried:
    /// restart the read from <c>-1</c> or from that offset.
    /// </summary>
    BeforeRetainedStart,
}

/// <summary>The one exception the client throws for failed protocol operations.</summary>
public sealed class DurableStreamException : Exception
{
    /// <summary>Creates the exception for <paramref name="errorCode"/>, with the HTTP status when a response was received.</summary>
    public DurableStreamException(DurableStreamErrorCode errorCode, HttpStatusCode? statusCode, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
        StatusCode = statusCode;
    }

    /// <summary>What went wrong.</summary>
    public DurableStreamErrorCode ErrorCode { get; }

    /// <summary>The HTTP status, or null when no response arrived.</summary>
    public HttpStatusCode? StatusCode { get; }

    /// <summary>The stream's tail from <c>Stream-Next-Offset</c>, when the error response carried it (e.g. a closed stream).</summary>
    public string? NextOffset { get; init; }

    /// <summary>
    /// On a failed read: the offset after the last chunk the read delivered (its start offset when it delivered none),
    /// from which a new read continues without repeating or skipping data. Null for other operations.
    /// </summary>
    public string? ResumeOffset { get; internal set; }

    /// <summary>
    /// Where the stream's retained data starts, from <c>Stream-Retained-Start</c>, on
    /// <see cref="DurableStreamErrorCode.BeforeRetainedStart"/>; null otherwise.
    /// </summary>
    public string? RetainedStart { get; init; }

    /// <summary>The server's current producer epoch on <see cref="DurableStreamErrorCode.StaleEpoch"/>.</summary>
    public long? ProducerEpoch { get; init; }

    /// <summary>The sequence the server expected on <see cref="DurableStreamErrorCode.SequenceGap"/>.</summary>
    public long? ProducerExpectedSeq { get; init; }

    [DoesNotReturn]
    internal static void Throw(DurableStreamException exception) => throw exception;

    [DoesNotReturn]
    internal static void ThrowUnavailable(string message, Exception? inner) =>
        throw new DurableStreamException(DurableStreamErrorCode.Unavailable, null, message, inner);
}
