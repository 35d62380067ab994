namespace DurableStreams.Protocol;

/// <summary>Header and query names from PROTOCOL.md, in one place.</summary>
public static class ProtocolHeaders
{
    public const string StreamTtl = "Stream-TTL";
    public const string StreamExpiresAt = "Stream-Expires-At";
    public const string StreamSeq = "Stream-Seq";
    public const string StreamCursor = "Stream-Cursor";
    public const string StreamNextOffset = "Stream-Next-Offset";
    public const string StreamUpToDate = "Stream-Up-To-Date";
    public const string StreamClosed = "Stream-Closed";
    public const string StreamForkedFrom = "Stream-Forked-From";
    public const string StreamForkOffset = "Stream-Fork-Offset";
    public const string StreamForkSubOffset = "Stream-Fork-Sub-Offset";
    public const string StreamSseDataEncoding = "Stream-SSE-Data-Encoding";

    /// <summary>
    /// Where a stream's retained data starts (issue 18): on every HEAD (<c>0000000000000000_0000000000000000</c> when
    /// nothing was dropped) and on the 410 a read below it answers. Reading from <c>offset=-1</c> starts there.
    /// </summary>
    public const string StreamRetainedStart = "Stream-Retained-Start";
    public const string ProducerId = "Producer-Id";
    public const string ProducerEpoch = "Producer-Epoch";
    public const string ProducerSeq = "Producer-Seq";
    public const string ProducerExpectedSeq = "Producer-Expected-Seq";
    public const string ProducerReceivedSeq = "Producer-Received-Seq";

    /// <summary>
    /// The protocol headers a client sends (every constant above that a request may carry), in the order CORS
    /// preflights list them. A new request header belongs here, so browsers may send it.
    /// </summary>
    public static IReadOnlyList<string> RequestHeaders { get; } =
    [
        StreamSeq, StreamTtl, StreamExpiresAt, StreamClosed, StreamForkedFrom, StreamForkOffset, StreamForkSubOffset,
        ProducerId, ProducerEpoch, ProducerSeq,
    ];

    /// <summary>
    /// The protocol headers a server answers with (every constant above that a response may carry), in the order CORS
    /// responses expose them. A new response header belongs here, so browser scripts may read it.
    /// </summary>
    public static IReadOnlyList<string> ResponseHeaders { get; } =
    [
        StreamNextOffset, StreamCursor, StreamUpToDate, StreamClosed, StreamTtl, StreamExpiresAt, StreamSseDataEncoding,
        ProducerEpoch, ProducerSeq, ProducerExpectedSeq, ProducerReceivedSeq, StreamRetainedStart,
    ];
}

/// <summary>Query parameter names and values.</summary>
public static class ProtocolQuery
{
    public const string Offset = "offset";
    public const string Live = "live";
    public const string Cursor = "cursor";
    public const string LongPoll = "long-poll";
    public const string Sse = "sse";
    public const string BeginningSentinel = "-1";
    public const string NowSentinel = "now";
}
