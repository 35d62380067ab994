using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>An idempotent producer's identity and the numbers of one request (§5.2.1).</summary>
public readonly record struct ProducerClaim(string Id, long Epoch, long Seq);

/// <summary>Where a fork branches off (§4.2): the source stream, an anchor offset (null = source tail) and a sub-offset.</summary>
public sealed record ForkRequest(string SourceName, StreamOffset? Offset, long SubOffset);

/// <summary>A PUT, already validated for header syntax by the caller.</summary>
public sealed class CreateStreamRequest
{
    /// <summary>Requested content type; null means the default (or, for a fork, the source's type).</summary>
    public string? ContentType { get; init; }
    public long? TtlSeconds { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public bool Closed { get; init; }

    /// <summary>
    /// The body, lent for the duration of the store call only: the server reuses (pooled) or frees (native) its memory
    /// as soon as the call returns, so a store copies whatever it keeps, and a store that logs the bytes asynchronously
    /// (the file store's group commit) returns only after that write has finished, whatever the cancellation token says.
    /// </summary>
    public ReadOnlyMemory<byte> Body { get; init; }
    public ForkRequest? Fork { get; init; }
}

/// <summary>A POST, already validated for header syntax by the caller.</summary>
public sealed class AppendRequest
{
    /// <summary>The request's Content-Type; required when <see cref="Body"/> is not empty.</summary>
    public string? ContentType { get; init; }

    /// <summary>
    /// The body, lent for the duration of the store call only: the server reuses (pooled) or frees (native) its memory
    /// as soon as the call returns, so a store copies whatever it keeps, and a store that logs the bytes asynchronously
    /// (the file store's group commit) returns only after that write has finished, whatever the cancellation token says.
    /// </summary>
    public ReadOnlyMemory<byte> Body { get; init; }
    public string? StreamSeq { get; init; }
    public ProducerClaim? Producer { get; init; }
    public bool Close { get; init; }
}

/// <summary>Outcomes of a create.</summary>
public enum CreateStatus
{
    Created,
    /// <summary>The stream exists with the same configuration (idempotent PUT, 200).</summary>
    AlreadyExists,
    /// <summary>The stream exists with a different configuration (409).</summary>
    ConfigurationConflict,
    /// <summary>The name belongs to a soft-deleted stream that forks still use (409).</summary>
    SoftDeleted,
    SourceNotFound,
    /// <summary>The fork source was deleted while forks still reference it (409).</summary>
    SourceSoftDeleted,
    /// <summary>The fork's content type differs from the source's (409).</summary>
    SourceContentTypeMismatch,
    /// <summary>The fork offset is past the source's tail (400).</summary>
    ForkOffsetBeyondTail,
    /// <summary>The fork offset is not a message boundary of a JSON source (400).</summary>
    ForkOffsetUnaligned,
    /// <summary>
    /// The fork offset names an offset-space generation the source never issued (past its current one; 400). See
    /// <see cref="ReadStatus.OffsetNotIssued"/>.
    /// </summary>
    ForkOffsetNotIssued,
    /// <summary>The sub-offset passes the next data boundary (400).</summary>
    SubOffsetOutOfRange,
    /// <summary>The fork would be deeper than the store's <c>MaxForkDepth</c> (400); <see cref="CreateStreamResult.Limit"/> names it.</summary>
    ForkTooDeep,
    InvalidJson,
    JsonTooDeep,
    /// <summary>
    /// The initial JSON body holds more messages than the store's <c>MaxMessagesPerAppend</c> (413);
    /// <see cref="CreateStreamResult.Limit"/> names it.
    /// </summary>
    TooManyMessages,
    /// <summary>The disk is full; nothing was created (507).</summary>
    InsufficientStorage,
    /// <summary>The store could not write durably; nothing was created (500).</summary>
    StorageFailure,
}

/// <summary>Outcomes of an append (§5.2, §5.2.1, §5.3).</summary>
public enum AppendStatus
{
    /// <summary>New data (or a close) was committed.</summary>
    Appended,
    /// <summary>The producer already sent this (epoch, seq): nothing written, success (204).</summary>
    Duplicate,
    /// <summary>A close-only request on an already closed stream: nothing written, success (204).</summary>
    AlreadyClosed,
    NotFound,
    Gone,
    /// <summary>The stream is closed and this request would add data (409, Stream-Closed).</summary>
    StreamClosed,
    ContentTypeMismatch,
    /// <summary><c>Stream-Seq</c> did not increase (409).</summary>
    StreamSeqConflict,
    /// <summary>A stale producer epoch (403, zombie fencing).</summary>
    StaleEpoch,
    /// <summary>A producer sequence gap (409 with expected/received).</summary>
    SequenceGap,
    /// <summary>A new epoch must start at seq 0 (400).</summary>
    InvalidEpochSeq,
    InvalidJson,
    EmptyJsonArray,
    JsonTooDeep,
    /// <summary>
    /// The JSON body holds more messages than the store's <c>MaxMessagesPerAppend</c>; nothing was stored (413).
    /// <see cref="AppendStreamResult.Limit"/> names the limit.
    /// </summary>
    TooManyMessages,
    /// <summary>An empty body without Stream-Closed (400).</summary>
    EmptyBody,
    /// <summary>A body without a Content-Type (400).</summary>
    MissingContentType,
    /// <summary>The disk is full; nothing was appended and the stream is unchanged (507).</summary>
    InsufficientStorage,
    /// <summary>The store could not write durably, or the stream failed closed; nothing was appended (500).</summary>
    StorageFailure,
}

/// <summary>Outcomes of reads and metadata calls.</summary>
public enum ReadStatus
{
    Ok,
    NotFound,
    Gone,
    /// <summary>The requested offset is past the tail (400).</summary>
    OffsetBeyondTail,
    /// <summary>The requested offset splits a JSON message (400).</summary>
    OffsetUnaligned,
    /// <summary>Stored data failed its checksum; the stream fails closed rather than serve it (500).</summary>
    Corrupt,
    /// <summary>
    /// The requested offset is below the stream's retained start: retention or compaction dropped it (410). Also an
    /// offset of an earlier generation into a range compaction has since rewritten (see
    /// <see cref="ReadRules.ResolveStart"/>). <see cref="ReadResult.Info"/> is set, and its
    /// <see cref="StoredStreamInfo.RetainedStart"/> says where data starts.
    /// </summary>
    BeforeRetainedStart,
    /// <summary>
    /// The requested offset carries an offset-space generation past the stream's current one: no server issued it (400).
    /// </summary>
    OffsetNotIssued,
}

/// <summary>Outcomes of a delete.</summary>
public enum DeleteStatus
{
    Deleted,
    NotFound,
    Gone,
    /// <summary>The store could not record the deletion durably (500).</summary>
    StorageFailure,
}

/// <summary>Stream metadata as HEAD reports it.</summary>
public sealed record StoredStreamInfo(
    string Name,
    long Incarnation,
    string ContentType,
    StreamOffset Tail,
    bool Closed,
    long? TtlSeconds,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset CreatedAt)
{
    /// <summary>
    /// Where the stream's readable data starts: 0 unless retention or compaction dropped a prefix (for a fork, the
    /// effective start over its chain, see <see cref="Retention.RetentionRules.EffectiveStart"/>).
    /// </summary>
    public StreamOffset RetainedStart { get; init; }

    /// <summary>
    /// The stream's offset-space generation: 0 until State-Protocol compaction first rewrites a prefix, then one more per
    /// compaction. Every offset the store returns for the stream (<see cref="Tail"/>, <see cref="RetainedStart"/>, a
    /// read's start and next offset, an append's next offset, a change's tail) carries it.
    /// </summary>
    public long OffsetGeneration { get; init; }

    /// <summary>
    /// Where the last compaction's snapshot ends (0 when never compacted): offsets below it are valid only in
    /// <see cref="OffsetGeneration"/> (the snapshot's own), and forks never read a compacted source below it.
    /// </summary>
    public StreamOffset CompactedEnd { get; init; }

    /// <summary>The stream's offset space, as <see cref="ReadRules.ResolveStart"/> checks a requested offset against it.</summary>
    public OffsetSpace Space => new(OffsetGeneration, CompactedEnd.Position);
}

/// <summary>
/// A stream's offset space (issue 18): its current generation, and where its last compaction's snapshot ends. An offset
/// <c>(g, P)</c> is current when <c>g</c> is at most <see cref="Generation"/> and either <c>P</c> is at or past
/// <see cref="CompactedEnd"/> (data compaction never rewrote: offsets issued before it stay valid) or <c>g</c> is
/// <see cref="Generation"/> (an offset into the current snapshot).
/// </summary>
/// <param name="Generation">The current generation (0 until the first compaction).</param>
/// <param name="CompactedEnd">The end of the current snapshot (0 until the first compaction).</param>
public readonly record struct OffsetSpace(long Generation, long CompactedEnd)
{
    /// <summary>A stream never compacted.</summary>
    public static OffsetSpace Initial => default;
}

/// <param name="Status">The outcome.</param>
/// <param name="Info">The stream, when it exists.</param>
/// <param name="Limit">For a refusal by a configured limit, the limit (for the error message).</param>
public readonly record struct CreateStreamResult(CreateStatus Status, StoredStreamInfo? Info = null, long? Limit = null);

public readonly record struct AppendStreamResult(
    AppendStatus Status,
    StreamOffset NextOffset = default,
    bool Closed = false,
    long? ProducerEpoch = null,
    long? ProducerSeq = null,
    long? ExpectedSeq = null,
    long? ReceivedSeq = null,
    long? Limit = null);

public readonly record struct MetadataResult(ReadStatus Status, StoredStreamInfo? Info = null);

public readonly record struct DeleteResult(DeleteStatus Status);

/// <summary>
/// A read of stored bytes: for JSON streams the chunks are whole stored messages. Dispose it once the chunks have been
/// written: stores may lend pooled buffers (not disposing is safe, only slower).
/// </summary>
public sealed class ReadResult : IDisposable
{
    private Action? _release;
    public static ReadResult Failed(ReadStatus status) => new() { Status = status };

    /// <summary>
    /// A served read of [<paramref name="start"/>, <paramref name="end"/>) on a stream whose tail is
    /// <paramref name="tail"/>: up to date when it reaches the tail, and closed only then (§5.6, §5.7).
    /// </summary>
    public static ReadResult Served(StoredStreamInfo info, long start, long end, long tail, bool closed, IReadOnlyList<ReadOnlyMemory<byte>> chunks, Action? release = null) => new()
    {
        Status = ReadStatus.Ok,
        Info = info,
        Start = new StreamOffset(start) { Generation = info.OffsetGeneration },
        Next = new StreamOffset(end) { Generation = info.OffsetGeneration },
        UpToDate = end == tail,
        Closed = closed && end == tail,
        Chunks = chunks,
        Length = end - start,
        Release = release,
    };

    public ReadStatus Status { get; init; }
    public StoredStreamInfo? Info { get; init; }
    /// <summary>Where the returned data starts.</summary>
    public StreamOffset Start { get; init; }
    /// <summary>Where the next read starts (the end of the returned data).</summary>
    public StreamOffset Next { get; init; }
    /// <summary>The data reaches the tail as of the read.</summary>
    public bool UpToDate { get; init; }
    /// <summary>The stream is closed and the data reaches its final offset.</summary>
    public bool Closed { get; init; }
    public IReadOnlyList<ReadOnlyMemory<byte>> Chunks { get; init; } = [];
    public long Length { get; init; }

    /// <summary>Returns borrowed buffers to their owner; runs once, on <see cref="Dispose"/>.</summary>
    public Action? Release
    {
        get => _release;
        init => _release = value;
    }

    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}

/// <summary>Why a live wait ended.</summary>
public enum WaitOutcome
{
    /// <summary>The tail moved past the offset, or the stream closed.</summary>
    Changed,
    TimedOut,
    /// <summary>The stream is gone (deleted or expired).</summary>
    Gone,
}

/// <summary>What a read asks for.</summary>
public readonly record struct ReadRequest(OffsetQuery Offset, int MaxBytes);

/// <summary>
/// The one storage contract behind every front end: the in-memory store, the durable file store and the PostgreSQL
/// store implement it. Protocol outcomes are values; exceptions mean broken invariants or I/O failure. Every call that
/// reads or writes a stream refreshes its sliding TTL, except <see cref="GetMetadataAsync"/> (HEAD).
/// </summary>
public interface IStreamStore : IAsyncDisposable
{
    ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default);

    ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default);

    ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default);

    /// <summary>Metadata without refreshing the TTL.</summary>
    ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default);

    ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until the stream's own tail passes <paramref name="offset"/>, it closes, or it goes away, or until
    /// <paramref name="timeout"/>. Appends to a fork's source never wake a fork's waiters.
    /// </summary>
    ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default);

    /// <summary>
    /// <see cref="WaitAsync(string, StreamOffset, TimeSpan, CancellationToken)"/> that <paramref name="stopToken"/> also
    /// cancels (a request's abort and the server's stop): a live reader needs no linked token source of its own. This
    /// default links the two; the memory and file stores register their wait on both.
    /// </summary>
    async ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken stopToken, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopToken, cancellationToken);
        return await WaitAsync(name, offset, timeout, linked.Token).ConfigureAwait(false);
    }

    /// <summary>Every change this store commits, raised after the commit (see <see cref="IStreamChangeFeed"/>).</summary>
    IStreamChangeFeed Changes { get; }
}

/// <summary>
/// The store's internal stream listing (§6.2 back-fill): names of live streams. Optional beside
/// <see cref="IStreamStore"/>; a store without it gets no eager back-fill of pattern subscriptions.
/// </summary>
public interface IStreamCatalog
{
    /// <summary>A moment's view of the live (not soft-deleted) stream names.</summary>
    IReadOnlyList<string> ListStreamNames();
}
