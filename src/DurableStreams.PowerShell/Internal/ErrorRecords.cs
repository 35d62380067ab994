using System.Management.Automation;
using DurableStreams.Client;

namespace DurableStreams.PowerShell.Internal;

/// <summary>
/// Turns failures into <see cref="ErrorRecord"/>s with stable ErrorIds and fitting categories. Protocol errors show
/// one line naming the stream and the server's answer, never a stack trace.
/// </summary>
internal static class ErrorRecords
{
    /// <summary>The ErrorId and category for a client failure; <paramref name="creating"/> makes a 409 mean "exists with other settings".</summary>
    public static (string ErrorId, ErrorCategory Category) Classify(DurableStreamException ex, bool creating) => ex.ErrorCode switch
    {
        DurableStreamErrorCode.NotFound => ("StreamNotFound", ErrorCategory.ObjectNotFound),
        DurableStreamErrorCode.Gone => ("StreamGone", ErrorCategory.ObjectNotFound),
        DurableStreamErrorCode.BeforeRetainedStart => ("OffsetBeforeRetainedStart", ErrorCategory.ObjectNotFound),
        DurableStreamErrorCode.Conflict when creating => ("StreamExists", ErrorCategory.ResourceExists),
        DurableStreamErrorCode.Conflict => ("StreamConflict", ErrorCategory.InvalidOperation),
        DurableStreamErrorCode.StreamClosed => ("StreamClosed", ErrorCategory.InvalidOperation),
        DurableStreamErrorCode.SequenceGap => ("ProducerSequenceGap", ErrorCategory.InvalidOperation),
        DurableStreamErrorCode.StaleEpoch => ("ProducerEpochStale", ErrorCategory.PermissionDenied),
        DurableStreamErrorCode.BadRequest => ("BadRequest", ErrorCategory.InvalidArgument),
        DurableStreamErrorCode.Unauthorized => ("Unauthorized", ErrorCategory.AuthenticationError),
        DurableStreamErrorCode.Forbidden => ("Forbidden", ErrorCategory.PermissionDenied),
        DurableStreamErrorCode.NotSupported => ("NotSupported", ErrorCategory.NotImplemented),
        DurableStreamErrorCode.PayloadTooLarge => ("PayloadTooLarge", ErrorCategory.LimitsExceeded),
        DurableStreamErrorCode.TooManyRequests => ("TooManyRequests", ErrorCategory.LimitsExceeded),
        DurableStreamErrorCode.InsufficientStorage => ("InsufficientStorage", ErrorCategory.ResourceUnavailable),
        DurableStreamErrorCode.Unavailable when ex.StatusCode is null => ("ServerUnreachable", ErrorCategory.ConnectionError),
        DurableStreamErrorCode.Unavailable => ("ServerError", ErrorCategory.ResourceUnavailable),
        _ => ("ProtocolError", ErrorCategory.ProtocolError),
    };

    public static ErrorRecord FromClient(DurableStreamException ex, Uri stream, bool creating = false)
    {
        var (id, category) = Classify(ex, creating);
        var detail = ex.Message.ReplaceLineEndings(" ").Trim();
        var status = ex.StatusCode is { } code ? $" ({(int)code})" : string.Empty;
        var message = id switch
        {
            "StreamNotFound" => $"Stream '{stream}' was not found{status}: {detail}",
            "StreamGone" => $"Stream '{stream}' is gone{status}: {detail}",
            "OffsetBeforeRetainedStart" => $"Offset {ex.ResumeOffset ?? "(unknown)"} of stream '{stream}' is before its retained start {ex.RetainedStart} "
                + $"(retention or compaction dropped it); read from the start with -Offset -1 (or {ex.RetainedStart}).",
            "StreamExists" => $"Stream '{stream}' already exists with other settings{status}: {detail}",
            "StreamClosed" => $"Stream '{stream}' is closed{status}: {detail}",
            "ServerUnreachable" => $"Could not reach the server of stream '{stream}': {detail}",
            "Unauthorized" => $"Stream '{stream}' needs a token{status}: {detail} Pass -Token or -Credential, or set $env:STREAM_AUTH to 'Bearer <token>'.",
            _ => $"Request for stream '{stream}' failed{status}: {detail}",
        };
        return new ErrorRecord(ex, id, category, stream) { ErrorDetails = new ErrorDetails(message) };
    }

    public static ErrorRecord Create(string errorId, ErrorCategory category, string message, object? target, Exception? inner = null) =>
        new(inner ?? new InvalidOperationException(message), errorId, category, target) { ErrorDetails = new ErrorDetails(message) };

    public static ErrorRecord InvalidArgument(string errorId, string message, object? target) =>
        new(new ArgumentException(message), errorId, ErrorCategory.InvalidArgument, target) { ErrorDetails = new ErrorDetails(message) };
}
