using System.Diagnostics.CodeAnalysis;
using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>What a store knows of the stream that already holds the name a PUT asks for.</summary>
/// <param name="SoftDeleted">Deleted while forks still read through it.</param>
/// <param name="Expired">Past its expiry or idle longer than its TTL (and not soft-deleted).</param>
/// <param name="Requested">The configuration that created it.</param>
/// <param name="Closed">Its current closure (what a repeated PUT's <c>Stream-Closed</c> is compared with).</param>
/// <param name="Info">Its metadata, for the answer to a repeated PUT.</param>
public readonly record struct ExistingStream(bool SoftDeleted, bool Expired, StreamConfiguration Requested, bool Closed, StoredStreamInfo? Info);

/// <summary>What a store knows of a fork's source stream, found by name.</summary>
/// <param name="SoftDeleted">Deleted while forks still read through it.</param>
/// <param name="Expired">Past its expiry or idle longer than its TTL (and not soft-deleted).</param>
/// <param name="ContentType">Its content type (the fork's).</param>
/// <param name="Depth">Forks between it and the root of its chain: 0 for a stream that is not a fork.</param>
/// <param name="Tail">Its committed tail.</param>
/// <param name="TtlSeconds">Its TTL, which a fork naming no expiry inherits.</param>
/// <param name="ExpiresAt">Its absolute expiry, which a fork naming no expiry inherits.</param>
public readonly record struct ForkSource(bool SoftDeleted, bool Expired, string ContentType, int Depth, long Tail, long? TtlSeconds, DateTimeOffset? ExpiresAt)
{
    /// <summary>
    /// Its effective retained start (0 until retention drops a prefix): a fork position below it is not checked for
    /// alignment (<see cref="ForkRules.ResolvePosition"/>), and the store's boundaries are never asked about one.
    /// For a compacted source it is at least the source's compacted end
    /// (<see cref="Compaction.CompactionRules.ForkFloor"/>): a fork never inherits a snapshot.
    /// </summary>
    public long RetainedStart { get; init; }

    /// <summary>The source's offset-space generation: a fork offset of a later one was never issued (400).</summary>
    public long OffsetGeneration { get; init; }
}

/// <summary>The store limits a create is checked against.</summary>
/// <param name="MaxJsonDepth">Deepest JSON nesting of the initial body.</param>
/// <param name="MaxMessages">Most JSON messages in the initial body (<c>MaxMessagesPerAppend</c>).</param>
/// <param name="MaxForkDepth">Deepest fork chain (<c>MaxForkDepth</c>).</param>
public readonly record struct CreateLimits(int MaxJsonDepth, int MaxMessages, int MaxForkDepth);

/// <summary>The result of evaluating a PUT for a free name: a refusal, or the stream to create.</summary>
public sealed class CreateDecision
{
    private CreateDecision(CreateStreamResult result, bool expireSource, StreamState? state, long forkPosition, List<ReadOnlyMemory<byte>>? messages)
    {
        Result = result;
        ExpireSource = expireSource;
        State = state;
        ForkPosition = forkPosition;
        Messages = messages ?? [];
    }

    /// <summary>The outcome; <see cref="CreateStatus.Created"/> (without info) means "create <see cref="State"/>".</summary>
    public CreateStreamResult Result { get; }

    [MemberNotNullWhen(true, nameof(State))]
    public bool ShouldCreate => Result.Status == CreateStatus.Created;

    /// <summary>The fork source was found expired: the store expires it (and the PUT is answered source-not-found).</summary>
    public bool ExpireSource { get; }

    /// <summary>
    /// The new stream's writer state: content type (a fork's is its source's), expiry (a fork naming none inherits its
    /// source's), the configuration a repeated PUT is compared with, closure, and <see cref="StreamState.Tail"/> past
    /// the initial body. Null when refused.
    /// </summary>
    public StreamState? State { get; }

    /// <summary>Where the stream's own data begins: the fork position, or 0.</summary>
    public long ForkPosition { get; }

    /// <summary>The initial body's stored messages (borrowed from the request; a store copies what it keeps).</summary>
    public List<ReadOnlyMemory<byte>> Messages { get; }

    internal static CreateDecision Refuse(CreateStatus status, long? limit = null, bool expireSource = false) =>
        new(new CreateStreamResult(status, Limit: limit), expireSource, null, 0, null);

    internal static CreateDecision Create(StreamState state, long forkPosition, List<ReadOnlyMemory<byte>> messages) =>
        new(new CreateStreamResult(CreateStatus.Created), false, state, forkPosition, messages);
}

/// <summary>
/// The create rules of §5.1 and §4.2, shared by every store so they cannot drift apart. A store holding the name's
/// critical section asks <see cref="CheckExisting"/> about a stream that already has the name, then (the name being
/// free) looks up the fork source and asks <see cref="Evaluate"/>; it then only persists the decision and publishes.
/// Precedence: existing stream (soft-deleted, then expiry, then configuration match), fork source (found, expiry,
/// soft-deleted, content type, depth), fork position, then the initial body.
/// </summary>
public static class CreateRules
{
    /// <summary>
    /// What a stream already holding the name means for the PUT: a soft-deleted one refuses it; a live one answers it
    /// (already exists when the PUT re-states its configuration, a conflict otherwise). Null when the name is free
    /// after all: the stream expired, and <paramref name="expire"/> tells the store to expire it before creating.
    /// </summary>
    public static CreateStreamResult? CheckExisting(CreateStreamRequest request, in ExistingStream existing, out bool expire)
    {
        ArgumentNullException.ThrowIfNull(request);
        expire = false;
        if (existing.SoftDeleted)
        {
            return new CreateStreamResult(CreateStatus.SoftDeleted);
        }
        if (existing.Expired)
        {
            expire = true;
            return null;
        }
        var matches = existing.Requested.IsMatchedBy(request, existing.Closed);
        return new CreateStreamResult(matches ? CreateStatus.AlreadyExists : CreateStatus.ConfigurationConflict, existing.Info);
    }

    /// <summary>Evaluates a PUT that is not a fork, for a free name.</summary>
    public static CreateDecision Evaluate(CreateStreamRequest request, CreateLimits limits, DateTimeOffset now) =>
        Evaluate(request, null, default(NoBoundaries), limits, now);

    /// <summary>
    /// Evaluates a PUT for a free name: for a fork, <paramref name="source"/> is the stream named as its source (null
    /// when there is none) and <paramref name="sourceBoundaries"/> its message boundaries; otherwise both are unused.
    /// </summary>
    public static CreateDecision Evaluate<TBoundaries>(CreateStreamRequest request, ForkSource? source, TBoundaries sourceBoundaries, CreateLimits limits, DateTimeOffset now)
        where TBoundaries : IStreamBoundaries
    {
        ArgumentNullException.ThrowIfNull(request);
        var contentType = request.ContentType ?? ContentTypes.Default;
        var ttl = request.TtlSeconds;
        var expiresAt = request.ExpiresAt;
        var forkPosition = 0L;
        StreamOffset? anchor = null;
        if (request.Fork is { } fork)
        {
            if (source is not { } s)
            {
                return CreateDecision.Refuse(CreateStatus.SourceNotFound);
            }
            if (!s.SoftDeleted && s.Expired)
            {
                return CreateDecision.Refuse(CreateStatus.SourceNotFound, expireSource: true);
            }
            if (ForkRules.CheckSource(s.SoftDeleted, s.ContentType, request.ContentType) is not CreateStatus.Created and var sourceStatus)
            {
                return CreateDecision.Refuse(sourceStatus);
            }
            if (ForkRules.CheckDepth(s.Depth, limits.MaxForkDepth) is not CreateStatus.Created and var depthStatus)
            {
                return CreateDecision.Refuse(depthStatus, limits.MaxForkDepth);
            }
            contentType = s.ContentType;
            if (fork.Offset is { } requested && requested.Generation > s.OffsetGeneration)
            {
                return CreateDecision.Refuse(CreateStatus.ForkOffsetNotIssued);
            }
            var positionStatus = ForkRules.ResolvePosition(fork, s.Tail, s.RetainedStart, ContentTypes.IsJson(s.ContentType), sourceBoundaries, out var resolved, out forkPosition);
            if (positionStatus != CreateStatus.Created)
            {
                return CreateDecision.Refuse(positionStatus);
            }
            anchor = resolved;
            ForkRules.InheritExpiry(ref ttl, ref expiresAt, s.TtlSeconds, s.ExpiresAt);
        }

        var bodyStatus = FrameBody(contentType, request.Body, limits.MaxJsonDepth, limits.MaxMessages, out var messages);
        if (bodyStatus != CreateStatus.Created)
        {
            return CreateDecision.Refuse(bodyStatus, bodyStatus == CreateStatus.TooManyMessages ? limits.MaxMessages : null);
        }
        var tail = forkPosition;
        foreach (var message in messages)
        {
            tail += message.Length;
        }
        var state = new StreamState
        {
            ContentType = contentType,
            TtlSeconds = ttl,
            ExpiresAt = expiresAt,
            CreatedAt = now,
            Requested = new StreamConfiguration(contentType, request.TtlSeconds, request.ExpiresAt, request.Fork?.SourceName, anchor, request.Fork?.SubOffset ?? 0),
            Tail = tail,
            Closed = request.Closed,
        };
        return CreateDecision.Create(state, forkPosition, messages);
    }

    /// <summary>
    /// The initial body's stored messages (JSON: one per flattened value, <c>[]</c> allowed; otherwise the body as one
    /// message, borrowed from the caller), or why it is refused.
    /// </summary>
    public static CreateStatus FrameBody(string contentType, ReadOnlyMemory<byte> body, int maxJsonDepth, out List<ReadOnlyMemory<byte>> messages) =>
        FrameBody(contentType, body, maxJsonDepth, int.MaxValue, out messages);

    /// <summary>
    /// <see cref="FrameBody(string, ReadOnlyMemory{byte}, int, out List{ReadOnlyMemory{byte}})"/>, refusing a JSON body
    /// of more than <paramref name="maxMessages"/> messages with <see cref="CreateStatus.TooManyMessages"/>.
    /// </summary>
    public static CreateStatus FrameBody(string contentType, ReadOnlyMemory<byte> body, int maxJsonDepth, int maxMessages, out List<ReadOnlyMemory<byte>> messages)
    {
        messages = [];
        if (body.IsEmpty)
        {
            return CreateStatus.Created;
        }
        if (!ContentTypes.IsJson(contentType))
        {
            messages.Add(body);
            return CreateStatus.Created;
        }
        return JsonFraming.TrySplit(body, maxJsonDepth, maxMessages, out messages) switch
        {
            JsonFramingError.None => CreateStatus.Created,
            JsonFramingError.TooManyMessages => CreateStatus.TooManyMessages,
            JsonFramingError.TooDeep => CreateStatus.JsonTooDeep,
            _ => CreateStatus.InvalidJson,
        };
    }

    /// <summary>Boundaries of no stream: a PUT that is not a fork never asks.</summary>
    private readonly struct NoBoundaries : IStreamBoundaries
    {
        public bool IsBoundary(long position) => throw new InvalidOperationException("Not a fork.");

        public long NextBoundary(long position) => throw new InvalidOperationException("Not a fork.");
    }
}
