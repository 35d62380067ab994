using System.Globalization;
using System.Text.Json;
using DurableStreams.Protocol;
using DurableStreams.Subscriptions;
using DurableStreams.Core;
using Microsoft.AspNetCore.Http;

namespace DurableStreams.Server.Internal;

/// <summary>The one place that turns store outcomes into HTTP status codes, headers and messages.</summary>
internal static class ResultMapping
{
    public static HttpError? CreateError(CreateStreamResult result) => result.Status switch
    {
        CreateStatus.ForkTooDeep => HttpError.BadRequest(
            $"The fork would be more than {FormatLimit(result.Limit)} forks deep, the server's limit (MaxForkDepth, serve --max-fork-depth)."),
        CreateStatus.TooManyMessages => new(StatusCodes.Status413PayloadTooLarge, TooManyMessages(result.Limit)),
        _ => CreateError(result.Status),
    };

    public static HttpError? CreateError(CreateStatus status) => status switch
    {
        CreateStatus.Created or CreateStatus.AlreadyExists => null,
        CreateStatus.ConfigurationConflict => new(StatusCodes.Status409Conflict, "A stream already exists at this URL with a different configuration."),
        CreateStatus.SoftDeleted => new(StatusCodes.Status409Conflict, "This stream was deleted but forks still use it; the URL cannot be reused yet."),
        CreateStatus.SourceNotFound => new(StatusCodes.Status404NotFound, "The fork source stream does not exist."),
        CreateStatus.SourceSoftDeleted => new(StatusCodes.Status409Conflict, "The fork source stream has been deleted."),
        CreateStatus.SourceContentTypeMismatch => new(StatusCodes.Status409Conflict, "Content-Type differs from the fork source's content type."),
        CreateStatus.ForkOffsetBeyondTail => HttpError.BadRequest("Stream-Fork-Offset is beyond the source stream's tail."),
        CreateStatus.ForkOffsetUnaligned => HttpError.BadRequest("Stream-Fork-Offset does not fall on a message boundary."),
        CreateStatus.ForkOffsetNotIssued => HttpError.BadRequest("Stream-Fork-Offset names an offset generation the source stream has not issued."),
        CreateStatus.SubOffsetOutOfRange => HttpError.BadRequest("Stream-Fork-Sub-Offset goes past the next data boundary."),
        CreateStatus.InvalidJson => HttpError.BadRequest("The body is not valid JSON."),
        CreateStatus.JsonTooDeep => HttpError.BadRequest("The JSON body is nested too deeply."),
        CreateStatus.InsufficientStorage => new(StatusCodes.Status507InsufficientStorage, "The server is out of storage space."),
        CreateStatus.StorageFailure => new(StatusCodes.Status500InternalServerError, "The server could not store the stream."),
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    public static void WriteCreated(HttpResponse response, CreateStreamResult result)
    {
        var info = result.Info!;
        response.StatusCode = result.Status == CreateStatus.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK;
        response.ContentType = info.ContentType;
        response.Headers[ProtocolHeaders.StreamNextOffset] = info.Tail.ToString();
        if (info.Closed)
        {
            response.Headers[ProtocolHeaders.StreamClosed] = "true";
        }
    }

    public static int AppendStatusCode(AppendStatus status, bool hadBody, bool hadProducer) => status switch
    {
        AppendStatus.Appended => hadProducer && hadBody ? StatusCodes.Status200OK : StatusCodes.Status204NoContent,
        AppendStatus.Duplicate or AppendStatus.AlreadyClosed => StatusCodes.Status204NoContent,
        AppendStatus.NotFound => StatusCodes.Status404NotFound,
        AppendStatus.Gone => StatusCodes.Status410Gone,
        AppendStatus.StreamClosed or AppendStatus.ContentTypeMismatch or AppendStatus.StreamSeqConflict or AppendStatus.SequenceGap => StatusCodes.Status409Conflict,
        AppendStatus.StaleEpoch => StatusCodes.Status403Forbidden,
        AppendStatus.TooManyMessages => StatusCodes.Status413PayloadTooLarge,
        AppendStatus.InsufficientStorage => StatusCodes.Status507InsufficientStorage,
        AppendStatus.StorageFailure => StatusCodes.Status500InternalServerError,
        _ => StatusCodes.Status400BadRequest,
    };

    private static string AppendMessage(AppendStatus status) => status switch
    {
        AppendStatus.NotFound => "Stream not found.",
        AppendStatus.Gone => "Stream has been deleted.",
        AppendStatus.StreamClosed => "Stream is closed.",
        AppendStatus.ContentTypeMismatch => "Content-Type does not match the stream's content type.",
        AppendStatus.StreamSeqConflict => "Stream-Seq must be greater than the last one (byte-wise order).",
        AppendStatus.StaleEpoch => "Producer epoch is stale.",
        AppendStatus.SequenceGap => "Producer-Seq skips ahead of the expected sequence.",
        AppendStatus.InvalidEpochSeq => "A new producer epoch must start at Producer-Seq 0.",
        AppendStatus.InvalidJson => "The body is not valid JSON.",
        AppendStatus.EmptyJsonArray => "An empty JSON array appends nothing.",
        AppendStatus.JsonTooDeep => "The JSON body is nested too deeply.",
        AppendStatus.EmptyBody => "An append needs a body (or Stream-Closed: true).",
        AppendStatus.MissingContentType => "Content-Type is required when appending data.",
        AppendStatus.InsufficientStorage => "The server is out of storage space; nothing was appended.",
        AppendStatus.StorageFailure => "The server could not store the data; nothing was appended.",
        _ => string.Empty,
    };

    public static Task WriteAppendAsync(HttpResponse response, AppendStreamResult result, bool hadBody, bool hadProducer)
    {
        var headers = response.Headers;
        var status = AppendStatusCode(result.Status, hadBody, hadProducer);
        if (result.Status is not (AppendStatus.NotFound or AppendStatus.Gone or AppendStatus.InsufficientStorage or AppendStatus.StorageFailure))
        {
            headers[ProtocolHeaders.StreamNextOffset] = result.NextOffset.ToString();
            if (result.Closed)
            {
                headers[ProtocolHeaders.StreamClosed] = "true";
            }
        }
        if (result.ProducerEpoch is { } epoch)
        {
            headers[ProtocolHeaders.ProducerEpoch] = epoch.ToString(CultureInfo.InvariantCulture);
        }
        if (result.ProducerSeq is { } seq)
        {
            headers[ProtocolHeaders.ProducerSeq] = seq.ToString(CultureInfo.InvariantCulture);
        }
        if (result.ExpectedSeq is { } expected)
        {
            headers[ProtocolHeaders.ProducerExpectedSeq] = expected.ToString(CultureInfo.InvariantCulture);
            headers[ProtocolHeaders.ProducerReceivedSeq] = result.ReceivedSeq!.Value.ToString(CultureInfo.InvariantCulture);
        }
        if (status < 300)
        {
            response.StatusCode = status;
            return Task.CompletedTask;
        }
        var message = result.Status == AppendStatus.TooManyMessages ? TooManyMessages(result.Limit) : AppendMessage(result.Status);
        return new HttpError(status, message).WriteAsync(response);
    }

    private static string TooManyMessages(long? limit) =>
        $"The JSON body holds more than {FormatLimit(limit)} messages, the most one request may append (MaxMessagesPerAppend, serve --max-messages-per-append); split it into several appends.";

    private static string FormatLimit(long? limit) => limit?.ToString("N0", CultureInfo.InvariantCulture) ?? "the configured number of";

    public static HttpError ReadError(ReadStatus status) => status switch
    {
        ReadStatus.NotFound => new(StatusCodes.Status404NotFound, "Stream not found."),
        ReadStatus.Gone => new(StatusCodes.Status410Gone, "Stream has been deleted."),
        ReadStatus.OffsetBeyondTail => HttpError.BadRequest("offset is beyond the stream's tail."),
        ReadStatus.OffsetUnaligned => HttpError.BadRequest("offset does not fall on a message boundary."),
        ReadStatus.Corrupt => new(StatusCodes.Status500InternalServerError, "Stored data for this stream failed its checksum; the stream is unavailable."),
        ReadStatus.BeforeRetainedStart => new(StatusCodes.Status410Gone, "offset is before the stream's retained start: retention or compaction dropped that data; read from offset=-1."),
        ReadStatus.OffsetNotIssued => HttpError.BadRequest("offset names an offset generation this stream has not issued."),
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    /// <summary>
    /// Writes the answer to a read (or HEAD) that failed with <paramref name="status"/>. A read below the retained start
    /// answers 410 with <c>Stream-Retained-Start</c> and a JSON body naming it, so a client can tell it from a deleted
    /// stream's 410 and knows where to restart; every other status is <see cref="ReadError(ReadStatus)"/>'s plain text.
    /// </summary>
    public static Task WriteReadErrorAsync(HttpResponse response, ReadStatus status, StoredStreamInfo? info)
    {
        if (status != ReadStatus.BeforeRetainedStart)
        {
            return ReadError(status).WriteAsync(response);
        }
        var start = (info?.RetainedStart ?? default).ToString();
        response.StatusCode = StatusCodes.Status410Gone;
        response.Headers[ProtocolHeaders.StreamRetainedStart] = start;
        response.Headers.CacheControl = "no-store";
        if (HttpMethods.IsHead(response.HttpContext.Request.Method))
        {
            return Task.CompletedTask;
        }
        response.ContentType = "application/json";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("error");
            writer.WriteString("code", BeforeRetainedStartCode);
            writer.WriteString("message", $"offset is before the stream's retained start {start}: retention or compaction dropped that data; read from offset=-1 (or {start}).");
            writer.WriteString("retained_start", start);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        var bytes = buffer.ToArray();
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes, 0, bytes.Length);
    }

    /// <summary>The compact route's answer when the store cannot compact (503).</summary>
    public static HttpError CompactionUnsupported { get; } = new(StatusCodes.Status503ServiceUnavailable, "This server's store does not support compaction.");

    /// <summary>
    /// The compact route's answer (issue 18): 404 for an unknown stream, 409 when compaction does not apply (not a JSON
    /// stream, or a fork), otherwise 200 with the outcome (<c>compacted</c>, <c>notDue</c> — nothing appended since the
    /// last compaction —, <c>notSmaller</c>, <c>tooLarge</c>, <c>conflict</c> — the stream changed underneath; try
    /// again) and the stream's offset space after it.
    /// </summary>
    public static Task WriteCompactionAsync(HttpResponse response, Core.Compaction.CompactionOutcome outcome, StoredStreamInfo? info)
    {
        switch (outcome.Status)
        {
            case Core.Compaction.CompactionStatus.NotFound:
                return new HttpError(StatusCodes.Status404NotFound, "Stream not found.").WriteAsync(response);
            case Core.Compaction.CompactionStatus.NotApplicable:
                return new HttpError(StatusCodes.Status409Conflict, "Compaction applies only to JSON streams that are not forks (State-Protocol messages).").WriteAsync(response);
        }
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.Headers.CacheControl = "no-store";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("outcome", CompactionOutcomeName(outcome.Status));
            writer.WriteNumber("bytesBefore", outcome.BytesBefore);
            writer.WriteNumber("bytesAfter", outcome.BytesAfter);
            writer.WriteNumber("messagesBefore", outcome.MessagesBefore);
            writer.WriteNumber("liveKeys", outcome.LiveKeys);
            writer.WriteNumber("unknownMessages", outcome.UnknownMessages);
            writer.WriteBoolean("partial", outcome.Partial);
            if (info is not null)
            {
                writer.WriteString("retainedStart", info.RetainedStart.ToString());
                writer.WriteNumber("offsetGeneration", info.OffsetGeneration);
                writer.WriteString("compactedEnd", info.CompactedEnd.ToString());
            }
            writer.WriteEndObject();
        }
        var bytes = buffer.ToArray();
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes, 0, bytes.Length);
    }

    /// <summary>The wire name of a compaction outcome.</summary>
    public static string CompactionOutcomeName(Core.Compaction.CompactionStatus status) => status switch
    {
        Core.Compaction.CompactionStatus.Compacted => "compacted",
        Core.Compaction.CompactionStatus.NotDue => "notDue",
        Core.Compaction.CompactionStatus.NotSmaller => "notSmaller",
        Core.Compaction.CompactionStatus.TooLarge => "tooLarge",
        Core.Compaction.CompactionStatus.NotApplicable => "notApplicable",
        Core.Compaction.CompactionStatus.NotFound => "notFound",
        Core.Compaction.CompactionStatus.Conflict => "conflict",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    /// <summary>The <c>error.code</c> of the 410 a read below the retained start answers.</summary>
    public const string BeforeRetainedStartCode = "BEFORE_RETAINED_START";

    public static HttpError DeleteError(DeleteStatus status) => status switch
    {
        DeleteStatus.NotFound => new(StatusCodes.Status404NotFound, "Stream not found."),
        DeleteStatus.Gone => new(StatusCodes.Status410Gone, "Stream has been deleted."),
        DeleteStatus.StorageFailure => new(StatusCodes.Status500InternalServerError, "The server could not record the deletion."),
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    /// <summary>Seconds a client should wait before retrying after the store was unavailable.</summary>
    public const int UnavailableRetryAfterSeconds = 1;

    /// <summary>
    /// The answer when the store's backing service is unreachable (<see cref="StoreUnavailableException"/>): 503 with
    /// Retry-After, so clients and load balancers retry instead of treating it as a server bug.
    /// </summary>
    public static Task WriteUnavailableAsync(HttpResponse response)
    {
        response.Headers.RetryAfter = UnavailableRetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        return new HttpError(StatusCodes.Status503ServiceUnavailable, "The storage service is unavailable; retry shortly.").WriteAsync(response);
    }

    /// <summary>HEAD metadata (§5.5).</summary>
    public static void WriteMetadata(HttpResponse response, StoredStreamInfo info)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = info.ContentType;
        var headers = response.Headers;
        headers[ProtocolHeaders.StreamNextOffset] = info.Tail.ToString();
        headers[ProtocolHeaders.StreamRetainedStart] = info.RetainedStart.ToString();
        if (info.TtlSeconds is { } ttl)
        {
            headers[ProtocolHeaders.StreamTtl] = ttl.ToString(CultureInfo.InvariantCulture);
        }
        if (info.ExpiresAt is { } expiresAt)
        {
            headers[ProtocolHeaders.StreamExpiresAt] = ExpiryRules.Format(expiresAt);
        }
        if (info.Closed)
        {
            headers[ProtocolHeaders.StreamClosed] = "true";
        }
        headers.CacheControl = "no-store";
    }

    /// <summary>
    /// ETag (§10.1): stream incarnation, the offset-space generation the range was served in (from the first compaction
    /// on, so one generation's bytes never match another's), the served range, and a closure marker so closing changes it.
    /// </summary>
    public static string ETag(ReadResult read) => read.Next.Generation == 0
        ? string.Create(CultureInfo.InvariantCulture, $"\"{read.Info!.Incarnation:x}:{read.Start.Position}:{read.Next.Position}{(read.Closed ? ":c" : "")}\"")
        : string.Create(CultureInfo.InvariantCulture, $"\"{read.Info!.Incarnation:x}:g{read.Next.Generation}:{read.Start.Position}:{read.Next.Position}{(read.Closed ? ":c" : "")}\"");

    /// <summary>
    /// The ETag a read is served with: weak (<c>W/</c>) when responses may be compressed, since a compressed body is not
    /// byte-identical to the stored range (RFC 9110 §8.8.1).
    /// </summary>
    public static string ETag(ReadResult read, bool weak) => weak ? "W/" + ETag(read) : ETag(read);

    /// <summary>The status of a subscription API error (§6–7).</summary>
    public static int SubscriptionStatusCode(SubscriptionErrorCode code) => code switch
    {
        SubscriptionErrorCode.InvalidRequest or SubscriptionErrorCode.WebhookUrlRejected => StatusCodes.Status400BadRequest,
        SubscriptionErrorCode.TokenInvalid => StatusCodes.Status401Unauthorized,
        SubscriptionErrorCode.SubscriptionNotFound => StatusCodes.Status404NotFound,
        SubscriptionErrorCode.SubscriptionAlreadyExists or SubscriptionErrorCode.Fenced or SubscriptionErrorCode.AlreadyClaimed
            or SubscriptionErrorCode.NoPendingWork or SubscriptionErrorCode.InvalidOffset => StatusCodes.Status409Conflict,
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, null),
    };

    /// <summary>The protocol's name of a subscription error code (<c>FENCED</c>, <c>ALREADY_CLAIMED</c>, …).</summary>
    public static string SubscriptionCodeName(SubscriptionErrorCode code) => code switch
    {
        SubscriptionErrorCode.InvalidRequest => "INVALID_REQUEST",
        SubscriptionErrorCode.SubscriptionNotFound => "SUBSCRIPTION_NOT_FOUND",
        SubscriptionErrorCode.SubscriptionAlreadyExists => "SUBSCRIPTION_ALREADY_EXISTS",
        SubscriptionErrorCode.WebhookUrlRejected => "WEBHOOK_URL_REJECTED",
        SubscriptionErrorCode.TokenInvalid => "TOKEN_INVALID",
        SubscriptionErrorCode.Fenced => "FENCED",
        SubscriptionErrorCode.AlreadyClaimed => "ALREADY_CLAIMED",
        SubscriptionErrorCode.NoPendingWork => "NO_PENDING_WORK",
        SubscriptionErrorCode.InvalidOffset => "INVALID_OFFSET",
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, null),
    };

    /// <summary>Writes <c>{ "error": { "code", "message", … } }</c> with the code's status.</summary>
    public static Task WriteSubscriptionErrorAsync(HttpResponse response, SubscriptionError error)
    {
        response.StatusCode = SubscriptionStatusCode(error.Code);
        response.ContentType = "application/json";
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("error");
            writer.WriteString("code", SubscriptionCodeName(error.Code));
            writer.WriteString("message", error.Message);
            if (error.CurrentHolder is { } holder)
            {
                writer.WriteString("current_holder", holder);
            }
            if (error.Generation is { } generation)
            {
                writer.WriteNumber("generation", generation);
            }
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        var bytes = buffer.ToArray();
        response.ContentLength = bytes.Length;
        return response.Body.WriteAsync(bytes, 0, bytes.Length);
    }
}
