using DurableStreams.Protocol;
namespace DurableStreams.Client;

/// <summary>Settings of a PUT that creates (or re-confirms) a stream, optionally as a fork.</summary>
public sealed record CreateStreamOptions
{
    /// <summary>The stream's content type; null lets the server choose (<c>application/octet-stream</c>), or a fork inherit its source's.</summary>
    public string? ContentType { get; init; }

    /// <summary>Sliding time-to-live in whole seconds (<c>Stream-TTL</c>); none by default. Not combinable with <see cref="ExpiresAt"/>.</summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>Absolute expiry (<c>Stream-Expires-At</c>); none by default.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>Create the stream already closed (<c>Stream-Closed: true</c>); the body becomes its whole content. Default false.</summary>
    public bool Closed { get; init; }

    /// <summary>Initial content; empty by default.</summary>
    public ReadOnlyMemory<byte> Body { get; init; }

    /// <summary>Initial content streamed from a <see cref="Stream"/> (takes precedence over <see cref="Body"/>). A non-seekable stream disables retries.</summary>
    public Stream? BodyStream { get; init; }

    /// <summary>Name of the source stream to fork (<c>Stream-Forked-From</c>), resolved against the same base URL; none by default.</summary>
    public string? ForkFrom { get; init; }

    /// <summary>Divergence point in the source (<c>Stream-Fork-Offset</c>); the source's tail by default.</summary>
    public string? ForkOffset { get; init; }

    /// <summary>Messages (JSON) or bytes past <see cref="ForkOffset"/> to inherit (<c>Stream-Fork-Sub-Offset</c>); none by default.</summary>
    public long? ForkSubOffset { get; init; }
}

/// <summary>Whether a create made a new stream.</summary>
public enum CreateOutcome
{
    /// <summary>201: a new stream.</summary>
    Created,
    /// <summary>200: a stream with the same configuration already existed (also what a retried create reports).</summary>
    AlreadyExisted,
}

/// <summary>The answer to a create.</summary>
public sealed record StreamInfo(string Name, CreateOutcome Outcome, string NextOffset, string? ContentType, bool Closed);

/// <summary>Settings of a plain append.</summary>
public sealed record AppendOptions
{
    /// <summary>Writer sequence (<c>Stream-Seq</c>), compared byte-wise by the server; none by default.</summary>
    public string? StreamSeq { get; init; }

    /// <summary>Close the stream atomically after this append (<c>Stream-Closed: true</c>). Default false.</summary>
    public bool Close { get; init; }
}

/// <summary>The answer to an append or close.</summary>
public sealed record AppendResult(string NextOffset, bool Closed);

/// <summary>A stream's metadata from HEAD.</summary>
public sealed record StreamMetadata(string? ContentType, string NextOffset, bool Closed, TimeSpan? Ttl, DateTimeOffset? ExpiresAt)
{
    /// <summary>
    /// Where the stream's retained data starts (<c>Stream-Retained-Start</c>): the zero offset unless retention dropped a
    /// prefix; reading from <c>-1</c> starts here, and a read below it fails with
    /// <see cref="DurableStreamErrorCode.BeforeRetainedStart"/>. Null when the server does not send the header.
    /// </summary>
    public string? RetainedStart { get; init; }

    /// <summary>
    /// The stream's offset-space generation (the first field of its offsets): 0 until the server first compacts the
    /// stream (State-Protocol compaction), then one more per compaction.
    /// </summary>
    public long Generation => StreamOffset.TryParse(NextOffset, out var offset) ? offset.Generation : 0;
}

/// <summary>
/// What an on-demand compaction did (<see cref="DurableStreamClient.CompactAsync"/>, <c>POST __ds/compact/{stream}</c>).
/// </summary>
/// <param name="Outcome"><c>compacted</c>; <c>notDue</c> (nothing appended since the last compaction); <c>notSmaller</c>
/// (the snapshot would not be smaller); <c>tooLarge</c> (the snapshot exceeds the server's limit); <c>conflict</c> (the
/// stream changed meanwhile; try again).</param>
/// <param name="BytesBefore">Bytes of the prefix read.</param>
/// <param name="BytesAfter">Bytes of its snapshot (0 when none was built).</param>
/// <param name="MessagesBefore">Messages read.</param>
/// <param name="LiveKeys">(type, key) entries in the snapshot.</param>
/// <param name="UnknownMessages">Messages kept as they are because they are not State-Protocol messages.</param>
/// <param name="Partial">True when some messages were kept unchanged (<paramref name="UnknownMessages"/> &gt; 0).</param>
/// <param name="RetainedStart">The stream's retained start afterwards (where a read from <c>-1</c> starts).</param>
/// <param name="OffsetGeneration">The stream's offset-space generation afterwards.</param>
/// <param name="CompactedEnd">Where the last compaction's snapshot ends.</param>
public sealed record CompactionReport(
    string Outcome,
    long BytesBefore,
    long BytesAfter,
    long MessagesBefore,
    int LiveKeys,
    int UnknownMessages,
    bool Partial,
    string? RetainedStart,
    long OffsetGeneration,
    string? CompactedEnd)
{
    /// <summary>True when the prefix was replaced by its snapshot.</summary>
    public bool Compacted => Outcome == "compacted";
}

/// <summary>How a read follows the stream once it is up to date.</summary>
public enum LiveMode
{
    /// <summary>Catch-up only: the read ends when it is up to date (or at EOF).</summary>
    None,
    /// <summary>Follow with long-poll requests (<c>live=long-poll</c>).</summary>
    LongPoll,
    /// <summary>
    /// Follow with server-sent events (<c>live=sse</c>), reconnecting when the server ends the response (after the
    /// server's <c>retry:</c> interval, when it sent one).
    /// </summary>
    Sse,
    /// <summary>
    /// Catch up with plain reads until up to date, then follow: over SSE when the stream's content type is one the
    /// protocol serves as SSE (<c>text/*</c>, <c>application/json</c>), with long-poll otherwise.
    /// </summary>
    Auto,
}

/// <summary>Settings of a read.</summary>
public sealed record ReadOptions
{
    /// <summary>Where to start: a server-issued offset, <c>-1</c> (the beginning, the default) or <c>now</c> (the tail).</summary>
    public string Offset { get; init; } = DurableStreams.Protocol.ProtocolQuery.BeginningSentinel;

    /// <summary>Whether and how to follow live data; default <see cref="LiveMode.None"/>.</summary>
    public LiveMode Live { get; init; }

    /// <summary>
    /// How many failed attempts in a row (network errors, timeouts, 429, 5xx) the read retries before it gives up; a
    /// successful response resets the count. Default null: a following read (any <see cref="Live"/> mode but
    /// <see cref="LiveMode.None"/>) retries until cancelled or <see cref="RetryFor"/> runs out, a catch-up read
    /// <see cref="RetryPolicy.MaxRetries"/> times. Delays come from <see cref="DurableStreamClientOptions.Retry"/>.
    /// Must be at least 0. A read that gives up throws a <see cref="DurableStreamException"/> whose
    /// <see cref="DurableStreamException.ResumeOffset"/> is the offset to resume from.
    /// </summary>
    public int? MaxRetries { get; init; }

    /// <summary>
    /// How long the read keeps retrying without progress (no successful response) before it gives up. Default null:
    /// no time limit. Must be above zero.
    /// </summary>
    public TimeSpan? RetryFor { get; init; }
}

/// <summary>
/// One response (catch-up, long-poll) or, over SSE, the data events up to one control event, joined in order. <see cref="Data"/> may be empty when the chunk only
/// reports state (up to date, closed). For JSON streams <see cref="Data"/> is the text of a JSON array of messages.
/// </summary>
public sealed record StreamChunk(ReadOnlyMemory<byte> Data, string NextOffset, bool UpToDate, bool StreamClosed, string? Cursor);
