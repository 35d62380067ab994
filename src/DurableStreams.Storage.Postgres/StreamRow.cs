using DurableStreams.Core;
using DurableStreams.Protocol;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

/// <summary>One row of <c>ds_streams</c>, optionally with the requesting producer's row.</summary>
internal sealed class StreamRow
{
    public const short Live = 0;
    public const short SoftDeleted = 1;
    /// <summary>Expired while forks still read through it: the name is free, the data stays for the forks.</summary>
    public const short ExpiredRetained = 2;

    /// <summary>The column list every row query selects, in the order <see cref="Read"/> expects.</summary>
    public const string Columns =
        "s.id, s.name, s.incarnation, s.state, s.content_type, s.ttl_seconds, s.expires_ticks, s.created_ticks, s.accessed_ticks, "
        + "s.tail, s.closed, s.last_stream_seq, s.source_id, s.base_position, s.ref_count, s.req_content_type, s.req_ttl_seconds, "
        + "s.req_expires_ticks, s.fork_source, s.fork_offset, s.fork_sub_offset, s.retained_start, s.last_append_ticks, "
        + "s.offset_generation, s.compacted_end";

    public long Id { get; private init; }
    public required string Name { get; init; }
    public long Incarnation { get; private init; }
    public short State { get; private init; }
    public required string ContentType { get; init; }
    public long? TtlSeconds { get; private init; }
    public long? ExpiresTicks { get; private init; }
    public long CreatedTicks { get; private init; }
    public long AccessedTicks { get; private init; }
    public long Tail { get; private init; }
    public bool Closed { get; private init; }
    public string? LastStreamSeq { get; private init; }
    public long? SourceId { get; private init; }
    public long BasePosition { get; private init; }
    public int RefCount { get; private init; }
    /// <summary>Where this stream's own data starts (0 until retention drops a prefix; see the chain for a fork's effective start).</summary>
    public long RetainedStart { get; private init; }
    /// <summary>When the last append committed, recorded only for streams whose retention policy has a maximum age.</summary>
    public long? LastAppendTicks { get; private init; }
    /// <summary>The stream's offset-space generation: 0 until compaction first rewrites a prefix, then one more per compaction.</summary>
    public long OffsetGeneration { get; private init; }
    /// <summary>Where the last compaction's snapshot ends (0 when never compacted).</summary>
    public long CompactedEnd { get; private init; }
    /// <summary>The stream's offset space, as the read rules check a requested offset against it.</summary>
    public OffsetSpace Space => new(OffsetGeneration, CompactedEnd);
    public required StreamConfiguration Requested { get; init; }
    /// <summary>The requesting producer's row, when the lock query asked for one and it exists.</summary>
    public ProducerState? Producer { get; set; }

    public bool IsJson => ContentTypes.IsJson(ContentType);

    public static StreamRow Read(NpgsqlDataReader reader)
    {
        static long? Long(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);
        static DateTimeOffset? Time(long? ticks) => ticks is { } t ? new DateTimeOffset(t, TimeSpan.Zero) : null;
        var contentType = reader.GetString(4);
        var forkOffset = Long(reader, 19);
        var row = new StreamRow
        {
            Id = reader.GetInt64(0),
            Name = reader.GetString(1),
            Incarnation = reader.GetInt64(2),
            State = reader.GetInt16(3),
            ContentType = contentType,
            TtlSeconds = Long(reader, 5),
            ExpiresTicks = Long(reader, 6),
            CreatedTicks = reader.GetInt64(7),
            AccessedTicks = reader.GetInt64(8),
            Tail = reader.GetInt64(9),
            Closed = reader.GetBoolean(10),
            LastStreamSeq = reader.IsDBNull(11) ? null : reader.GetString(11),
            SourceId = Long(reader, 12),
            BasePosition = reader.GetInt64(13),
            RefCount = reader.GetInt32(14),
            Requested = new StreamConfiguration(
                reader.GetString(15), Long(reader, 16), Time(Long(reader, 17)),
                reader.IsDBNull(18) ? null : reader.GetString(18),
                forkOffset is { } o ? new StreamOffset(o) : null,
                reader.GetInt64(20)),
            RetainedStart = reader.GetInt64(21),
            LastAppendTicks = Long(reader, 22),
            OffsetGeneration = reader.GetInt64(23),
            CompactedEnd = reader.GetInt64(24),
        };
        return row;
    }

    /// <summary>True when the stream has passed its absolute expiry or sat idle longer than its TTL.</summary>
    public bool IsExpired(long nowTicks) =>
        (ExpiresTicks is { } at && at <= nowTicks) || (TtlSeconds is { } ttl && AccessedTicks + ttl * TimeSpan.TicksPerSecond <= nowTicks);

    /// <summary>
    /// Whether an access at <paramref name="nowTicks"/> should write <c>accessed_ticks</c>: only for TTL streams, and at
    /// most once per tenth of the TTL, so a hot stream's reads do not each write its row.
    /// </summary>
    public bool NeedsTouch(long nowTicks) =>
        TtlSeconds is { } ttl && nowTicks - AccessedTicks >= ttl * TimeSpan.TicksPerSecond / 10;

    /// <summary>
    /// The stream as the contract reports it; <paramref name="retainedStart"/> is the effective start (a fork's over its
    /// chain). Every offset in it carries the stream's generation.
    /// </summary>
    public StoredStreamInfo ToInfo(long retainedStart) => new(
        Name, Incarnation, ContentType, new StreamOffset(Tail) { Generation = OffsetGeneration }, Closed, TtlSeconds,
        ExpiresTicks is { } e ? new DateTimeOffset(e, TimeSpan.Zero) : null, new DateTimeOffset(CreatedTicks, TimeSpan.Zero))
    {
        RetainedStart = new StreamOffset(retainedStart) { Generation = OffsetGeneration },
        OffsetGeneration = OffsetGeneration,
        CompactedEnd = new StreamOffset(CompactedEnd) { Generation = OffsetGeneration },
    };

    /// <summary>The writer-visible state the shared append rules evaluate (with only the joined producer loaded).</summary>
    public StreamState ToState(string? producerId)
    {
        var state = new StreamState
        {
            ContentType = ContentType,
            TtlSeconds = TtlSeconds,
            ExpiresAt = ExpiresTicks is { } e ? new DateTimeOffset(e, TimeSpan.Zero) : null,
            CreatedAt = new DateTimeOffset(CreatedTicks, TimeSpan.Zero),
            Requested = Requested,
            Tail = Tail,
            Closed = Closed,
            LastStreamSeq = LastStreamSeq,
        };
        if (producerId is not null && Producer is { } producer)
        {
            state.Producers = state.Producers.SetItem(producerId, producer);
        }
        return state;
    }
}

/// <summary>
/// One level of a read: a stream in a fork chain, the range of positions it owns, its own retained start (rows of
/// that stream below it may be gone), and its offset space as read with it: its generation (a fetch of its rows checks
/// it is still current, so a read never mixes rows of two generations) and its compacted end (forks never read below it).
/// </summary>
internal readonly record struct ChainLevel(long Id, long Base, long Limit, long RetainedStart, long Generation, long CompactedEnd);
