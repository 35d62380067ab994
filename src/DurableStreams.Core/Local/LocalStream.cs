using DurableStreams.Core.Live;

namespace DurableStreams.Core.Local;

/// <summary>
/// One stream of a store that keeps its stream table in process (the memory and file stores): what both need for
/// lookup, expiry, live waits and the fork chain. A store's entry adds where its bytes live.
/// </summary>
/// <typeparam name="TSelf">The store's entry type (a fork's source is an entry of the same store).</typeparam>
internal abstract class LocalStream<TSelf> where TSelf : LocalStream<TSelf>
{
    protected LocalStream(string name, StreamState initial, TSelf? source, long basePosition)
    {
        Name = name;
        Source = source;
        Depth = source is null ? 0 : source.Depth + 1;
        BasePosition = basePosition;
        ContentType = initial.ContentType;
        IsJson = Protocol.ContentTypes.IsJson(initial.ContentType);
        TtlSeconds = initial.TtlSeconds;
        ExpiresAt = initial.ExpiresAt;
        CreatedAt = initial.CreatedAt;
    }

    /// <summary>The stream's lock: guards its writer and reader state and its bytes' index.</summary>
    public readonly object Gate = new();

    public string Name { get; }

    /// <summary>The stream this one forks from, or null.</summary>
    public TSelf? Source { get; }

    /// <summary>Forks between this stream and the root of its chain: 0 for a stream that is not a fork.</summary>
    public int Depth { get; }

    /// <summary>Start of this stream's own data: the fork position, or 0.</summary>
    public long BasePosition { get; }

    public string ContentType { get; }
    public bool IsJson { get; }
    public long? TtlSeconds { get; }
    public DateTimeOffset? ExpiresAt { get; }
    public DateTimeOffset CreatedAt { get; }

    /// <summary>The ETag incarnation: different for every stream ever created under a name.</summary>
    public abstract long Incarnation { get; }

    /// <summary>Deleted while forks still need its data (410 to clients).</summary>
    public abstract bool SoftDeleted { get; }

    /// <summary>The state readers see (published); guarded by <see cref="Gate"/>.</summary>
    public abstract StreamState ReaderState { get; }

    /// <summary>The state the append and create rules evaluate (may run ahead of readers); guarded by <see cref="Gate"/>.</summary>
    public abstract StreamState WriterState { get; }

    public StreamSignal Signal { get; } = new();

    /// <summary>Ticks of the last read or write, for the sliding TTL.</summary>
    public long LastAccessTicks;

    /// <summary>Forks that read through this stream; guarded by the store's structure lock.</summary>
    public int RefCount;

    /// <summary>Gone from the name table for good (deleted or expired); guarded by the structure lock.</summary>
    public bool Removed;

    /// <summary>
    /// Dropped from memory while idle (a store that reloads its streams from disk, <see cref="StreamTable{TStream}.Loader"/>):
    /// the name now loads a new entry. Set under <see cref="Gate"/>; an operation that finds it set under the gate
    /// looks the name up again instead of using this entry.
    /// </summary>
    public volatile bool Unloaded;

    /// <summary>
    /// Where this stream's own retained data starts (0 until retention drops a prefix); only moves forward. Written by
    /// the store under <see cref="Gate"/> and read without it (a torn read of a long is impossible on 64-bit).
    /// </summary>
    public long RetainedStart
    {
        get => Volatile.Read(ref _retainedStart);
        set => Volatile.Write(ref _retainedStart, value);
    }

    private long _retainedStart;

    /// <summary>
    /// This stream's offset space (issue 18): its generation and where its last compaction's snapshot ends. Written by
    /// the store under <see cref="Gate"/> together with <see cref="RetainedStart"/> when a compaction is published, and
    /// read under the gate (<see cref="Snapshot"/>, <see cref="ResolveRead"/>).
    /// </summary>
    public OffsetSpace Space { get; set; }

    /// <summary>
    /// The retained start readers see: this stream's own, or, below the fork position, the source chain's
    /// (<see cref="Retention.RetentionRules.EffectiveStart"/>, where a compacted source counts from its compacted end,
    /// <see cref="Compaction.CompactionRules.ForkFloor"/>). Walks the chain in a loop, from the root down.
    /// </summary>
    public long EffectiveRetainedStart
    {
        get
        {
            // Depth is bounded by MaxForkDepth at creation; collect the chain so the fold runs root first without recursion.
            Span<long> owns = Depth < 64 ? stackalloc long[Depth + 1] : new long[Depth + 1];
            Span<long> bases = Depth < 64 ? stackalloc long[Depth + 1] : new long[Depth + 1];
            Span<long> compactedEnds = Depth < 64 ? stackalloc long[Depth + 1] : new long[Depth + 1];
            var i = 0;
            for (var s = (TSelf)this; s is not null; s = s.Source, i++)
            {
                owns[i] = s.RetainedStart;
                bases[i] = s.BasePosition;
                compactedEnds[i] = s.Space.CompactedEnd;
            }
            long? effective = null;
            for (var j = i - 1; j >= 0; j--)
            {
                // What the next stream down (a fork of this one) inherits: never a snapshot.
                var forSource = effective is { } e && j < i - 1 ? Compaction.CompactionRules.ForkFloor(e, compactedEnds[j + 1]) : effective;
                effective = Retention.RetentionRules.EffectiveStart(owns[j], bases[j], forSource);
            }
            return effective ?? 0;
        }
    }

    /// <summary>Set (under the gate) when stored data failed its checksum; the stream then fails closed.</summary>
    public bool Corrupt { get; set; }

    /// <summary>True when the stream has a TTL or an absolute expiry.</summary>
    public bool CanExpire => TtlSeconds is not null || ExpiresAt is not null;

    /// <summary>True when the stream has passed its absolute expiry or sat idle longer than its TTL.</summary>
    public bool IsExpired(DateTimeOffset now) =>
        StreamState.IsExpired(TtlSeconds, ExpiresAt, now, new DateTimeOffset(Volatile.Read(ref LastAccessTicks), TimeSpan.Zero));

    /// <summary>The stream's metadata as readers see it.</summary>
    public StoredStreamInfo Snapshot()
    {
        lock (Gate)
        {
            var state = ReaderState;
            var space = Space;
            return new StoredStreamInfo(Name, Incarnation, ContentType, new Protocol.StreamOffset(state.Tail) { Generation = space.Generation }, state.Closed, TtlSeconds, ExpiresAt, CreatedAt)
            {
                RetainedStart = new Protocol.StreamOffset(EffectiveRetainedStart) { Generation = space.Generation },
                OffsetGeneration = space.Generation,
                CompactedEnd = new Protocol.StreamOffset(space.CompactedEnd) { Generation = space.Generation },
            };
        }
    }

    /// <summary>
    /// Where a read from <paramref name="offset"/> starts, against the tail and closure readers see (returned with it),
    /// or why it cannot: a corrupt stream fails closed, an offset past the tail, below the retained start or inside a
    /// JSON message is refused.
    /// </summary>
    public ReadStatus ResolveRead<TIndex>(Protocol.OffsetQuery offset, TIndex index, out long start, out long tail, out bool closed)
        where TIndex : struct, IMessageIndex<TSelf>
    {
        OffsetSpace space;
        lock (Gate)
        {
            tail = ReaderState.Tail;
            closed = ReaderState.Closed;
            space = Space;
            if (Corrupt)
            {
                start = 0;
                return ReadStatus.Corrupt;
            }
        }
        return ReadRules.ResolveStart(offset, space, EffectiveRetainedStart, tail, IsJson, new ChainBoundaries<TSelf, TIndex>((TSelf)this, tail, index), out start);
    }

    /// <summary>
    /// Whether <paramref name="length"/> bytes from <paramref name="position"/> are readable (below the tail readers see,
    /// at or above the retained start).
    /// </summary>
    public ReadStatus CheckRange(long position, int length)
    {
        lock (Gate)
        {
            return Corrupt ? ReadStatus.Corrupt
                : position > ReaderState.Tail - length ? ReadStatus.OffsetBeyondTail
                : position < EffectiveRetainedStart ? ReadStatus.BeforeRetainedStart
                : ReadStatus.Ok;
        }
    }

    /// <summary>What the create rules need of this stream when a PUT asks for its name.</summary>
    public ExistingStream AsExisting(DateTimeOffset now)
    {
        var expired = !SoftDeleted && IsExpired(now);
        bool closed;
        lock (Gate)
        {
            closed = WriterState.Closed;
        }
        return new ExistingStream(SoftDeleted, expired, WriterState.Requested, closed, expired || SoftDeleted ? null : Snapshot());
    }

    /// <summary>What the create rules need of this stream when a PUT forks it (its tail and retained start as readers see them).</summary>
    public ForkSource AsForkSource(DateTimeOffset now)
    {
        long tail;
        long retainedStart;
        OffsetSpace space;
        lock (Gate)
        {
            tail = ReaderState.Tail;
            space = Space;
            retainedStart = Compaction.CompactionRules.ForkFloor(EffectiveRetainedStart, space.CompactedEnd);
        }
        return new ForkSource(SoftDeleted, !SoftDeleted && IsExpired(now), ContentType, Depth, tail, TtlSeconds, ExpiresAt)
        {
            RetainedStart = retainedStart,
            OffsetGeneration = space.Generation,
        };
    }
}
