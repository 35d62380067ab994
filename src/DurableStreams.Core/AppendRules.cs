using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>The result of evaluating an append against a stream's state: a rejection, or the messages to commit.</summary>
public sealed class AppendDecision
{
    private readonly List<ReadOnlyMemory<byte>> _messages;
    // True while _messages holds JSON values as slices of the request body, not yet in their stored form.
    private bool _unframedJson;

    private AppendDecision(AppendStreamResult result, List<ReadOnlyMemory<byte>>? messages, bool unframedJson = false)
    {
        Result = result;
        _messages = messages ?? [];
        _unframedJson = unframedJson;
    }

    /// <summary>The outcome; <see cref="AppendStatus.Appended"/> means "commit <see cref="Messages"/>".</summary>
    public AppendStreamResult Result { get; }

    /// <summary>
    /// Stored-form messages to write (JSON: one per flattened value, each followed by a comma; otherwise the body as one
    /// message). For JSON the stored forms are copied out of the body on first access.
    /// </summary>
    public List<ReadOnlyMemory<byte>> Messages
    {
        get
        {
            if (_unframedJson)
            {
                JsonFraming.Frame(_messages);
                _unframedJson = false;
            }
            return _messages;
        }
    }

    public bool ShouldCommit => Result.Status == AppendStatus.Appended;

    /// <summary>
    /// For a JSON append whose <see cref="Messages"/> were not read yet: the values as slices of the request body,
    /// without their trailing commas, so a store that copies them anyway writes <c>value,</c> itself and the body is
    /// copied once. False for other appends (then use <see cref="Messages"/>).
    /// </summary>
    public bool TryGetJsonValues(out IReadOnlyList<ReadOnlyMemory<byte>> values)
    {
        values = _messages;
        return _unframedJson;
    }

    public static AppendDecision Reject(AppendStreamResult result) => new(result, null);

    public static AppendDecision Commit(List<ReadOnlyMemory<byte>> messages) => new(new AppendStreamResult(AppendStatus.Appended), messages);

    /// <summary>Commits JSON values as <see cref="JsonFraming.TrySplitValues"/> returned them (framed when <see cref="Messages"/> is read).</summary>
    public static AppendDecision CommitJsonValues(List<ReadOnlyMemory<byte>> values) => new(new AppendStreamResult(AppendStatus.Appended), values, unframedJson: true);
}

/// <summary>
/// The append rules of §5.2, §5.2.1 and §5.3, shared by every store so they cannot drift apart. Callers hold the
/// stream's critical section across <see cref="Evaluate(StreamState, AppendRequest, int, int, DateTimeOffset, TimeSpan)"/>, the durable write and <see cref="Apply"/>.
/// Precedence: request shape, producer fencing and duplicates (a retry of acknowledged data succeeds; on a closed stream
/// only a retry of the closing request does), closure,
/// content type, producer sequence, <c>Stream-Seq</c> (scoped per stream), then JSON validation.
/// </summary>
public static class AppendRules
{
    /// <summary>
    /// Default for the stores' <c>MaxMessagesPerAppend</c>: most JSON messages (values of a top-level array) one append
    /// or initial body may carry. Every message costs index memory, so an unbounded count lets one request pin a lot.
    /// </summary>
    public const int DefaultMaxMessagesPerAppend = 100_000;

    public static AppendDecision Evaluate(StreamState state, AppendRequest request, int maxJsonDepth) =>
        Evaluate(state, request, maxJsonDepth, int.MaxValue, DateTimeOffset.MinValue, Timeout.InfiniteTimeSpan);

    /// <summary>Evaluates an append with no producer expiry; a JSON body with more than <paramref name="maxMessages"/> messages is refused whole.</summary>
    public static AppendDecision Evaluate(StreamState state, AppendRequest request, int maxJsonDepth, int maxMessages) =>
        Evaluate(state, request, maxJsonDepth, maxMessages, DateTimeOffset.MinValue, Timeout.InfiniteTimeSpan);

    /// <summary>Evaluates an append with no message limit and producer expiry as below.</summary>
    public static AppendDecision Evaluate(StreamState state, AppendRequest request, int maxJsonDepth, DateTimeOffset now, TimeSpan producerRetention) =>
        Evaluate(state, request, maxJsonDepth, int.MaxValue, now, producerRetention);

    /// <summary>
    /// Evaluates an append: a JSON body with more than <paramref name="maxMessages"/> messages is refused whole, and a
    /// producer idle for <paramref name="producerRetention"/> or longer at <paramref name="now"/> is treated as new (its
    /// state expired, PROTOCOL.md "Producer State Cleanup").
    /// </summary>
    public static AppendDecision Evaluate(StreamState state, AppendRequest request, int maxJsonDepth, int maxMessages, DateTimeOffset now, TimeSpan producerRetention)
    {
        var hasBody = !request.Body.IsEmpty;
        if (!hasBody && !request.Close)
        {
            return Reject(AppendStatus.EmptyBody, state);
        }
        if (hasBody && request.ContentType is null)
        {
            return Reject(AppendStatus.MissingContentType, state);
        }

        ProducerState? producerState = null;
        if (request.Producer is { } producer)
        {
            if (state.Producers.TryGetValue(producer.Id, out producerState) && producerState.IsExpired(now, producerRetention))
            {
                producerState = null;
            }
            if (producerState is not null && producer.Epoch < producerState.Epoch)
            {
                return AppendDecision.Reject(new AppendStreamResult(AppendStatus.StaleEpoch, new StreamOffset(state.Tail), state.Closed, ProducerEpoch: producerState.Epoch));
            }
            if (producerState is not null && producer.Epoch == producerState.Epoch && producer.Seq <= producerState.LastSeq)
            {
                // On a closed stream only the closing request's tuple is a duplicate (§5.2.1 "Stream Closure with
                // Idempotent Producers"); nothing is accepted after a close, so it is the producer's last accepted.
                if (state.Closed && producer.Seq != producerState.LastSeq)
                {
                    return Reject(AppendStatus.StreamClosed, state);
                }
                return AppendDecision.Reject(new AppendStreamResult(AppendStatus.Duplicate, new StreamOffset(state.Tail), state.Closed, producerState.Epoch, producerState.LastSeq));
            }
        }

        if (state.Closed)
        {
            // A plain close-only request on a closed stream is idempotent; data, or a producer's close that is not a
            // retry of the closing request (handled above), is refused with Stream-Closed.
            return Reject(hasBody || request.Producer is not null ? AppendStatus.StreamClosed : AppendStatus.AlreadyClosed, state);
        }

        if (hasBody && !ContentTypes.Matches(request.ContentType!, state.ContentType))
        {
            return Reject(AppendStatus.ContentTypeMismatch, state);
        }

        if (request.Producer is { } p)
        {
            if (producerState is null)
            {
                if (p.Seq != 0)
                {
                    return AppendDecision.Reject(new AppendStreamResult(AppendStatus.SequenceGap, new StreamOffset(state.Tail), ExpectedSeq: 0, ReceivedSeq: p.Seq));
                }
            }
            else if (p.Epoch > producerState.Epoch)
            {
                if (p.Seq != 0)
                {
                    return Reject(AppendStatus.InvalidEpochSeq, state);
                }
            }
            else if (p.Seq > producerState.LastSeq + 1)
            {
                return AppendDecision.Reject(new AppendStreamResult(AppendStatus.SequenceGap, new StreamOffset(state.Tail), ExpectedSeq: producerState.LastSeq + 1, ReceivedSeq: p.Seq));
            }
        }

        if (request.StreamSeq is not null && state.LastStreamSeq is not null
            && string.CompareOrdinal(request.StreamSeq, state.LastStreamSeq) <= 0)
        {
            return Reject(AppendStatus.StreamSeqConflict, state);
        }

        if (!hasBody)
        {
            return AppendDecision.Commit([]);
        }
        if (!ContentTypes.IsJson(state.ContentType))
        {
            return AppendDecision.Commit([request.Body]);
        }
        // Values stay slices of the body until a store asks for stored forms, so the memory store copies them once.
        var error = JsonFraming.TrySplitValues(request.Body, maxJsonDepth, maxMessages, out var values);
        return error switch
        {
            JsonFramingError.TooManyMessages => AppendDecision.Reject(new AppendStreamResult(AppendStatus.TooManyMessages, new StreamOffset(state.Tail), state.Closed, Limit: maxMessages)),
            JsonFramingError.None when values.Count == 0 => Reject(AppendStatus.EmptyJsonArray, state),
            JsonFramingError.None => AppendDecision.CommitJsonValues(values),
            JsonFramingError.TooDeep => Reject(AppendStatus.JsonTooDeep, state),
            _ => Reject(AppendStatus.InvalidJson, state),
        };
    }

    /// <summary>
    /// Applies a committed decision to <paramref name="state"/> after the store has written <paramref name="written"/>
    /// bytes, and returns the success result.
    /// </summary>
    public static AppendStreamResult Apply(StreamState state, AppendRequest request, long written, DateTimeOffset now)
    {
        state.Tail += written;
        if (request.StreamSeq is not null)
        {
            state.LastStreamSeq = request.StreamSeq;
        }
        long? epoch = null;
        long? seq = null;
        if (request.Producer is { } producer)
        {
            // One entry replaced in the immutable map: O(log n), and views sharing the old map keep it.
            state.Producers = state.Producers.SetItem(producer.Id, new ProducerState(producer.Epoch, producer.Seq, now));
            epoch = producer.Epoch;
            seq = producer.Seq;
        }
        if (request.Close)
        {
            // The closing producer's (epoch, seq) is now its last accepted, so a retry of the close is a duplicate.
            state.Closed = true;
        }
        return new AppendStreamResult(AppendStatus.Appended, new StreamOffset(state.Tail), state.Closed, epoch, seq);
    }

    private static AppendDecision Reject(AppendStatus status, StreamState state) =>
        AppendDecision.Reject(new AppendStreamResult(status, new StreamOffset(state.Tail), state.Closed));
}
