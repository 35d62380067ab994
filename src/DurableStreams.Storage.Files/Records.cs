using DurableStreams.Core;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using DurableStreams.Protocol;

namespace DurableStreams.Storage.Files;

/// <summary>
/// One stored frame of a stream's data: at most <see cref="FileStreamStore.MaxFrameBytes"/> bytes with a CRC-32C.
/// <see cref="Boundary"/> marks the end of a message (JSON) or of an append (other types).
/// </summary>
internal readonly record struct Frame(long Start, int Length, uint Crc, bool Boundary)
{
    public long End => Start + Length;
}

/// <summary>
/// Where a compacted stream's current snapshot lives (issue 18): the offset-space <paramref name="Generation"/> it
/// created (its file is <c>snapshots/&lt;id&gt;.s&lt;generation&gt;</c>) and the logical range [<paramref name="Start"/>,
/// <paramref name="End"/>) it holds, at file offset <c>position - Start</c>. Default for a stream never compacted.
/// </summary>
internal readonly record struct SnapshotSpan(long Generation, long Start, long End)
{
    /// <summary>The offset space this compaction defines.</summary>
    public OffsetSpace Space => new(Generation, End);
}

/// <summary>A stream's structure: identity, configuration, fork link and lifecycle marks. Changes rarely.</summary>
internal sealed record StreamMeta(
    long Id,
    string Name,
    string ContentType,
    long? TtlSeconds,
    DateTimeOffset? ExpiresAt,
    DateTimeOffset CreatedAt,
    StreamConfiguration Requested,
    long? SourceId,
    long BasePosition,
    bool SoftDeleted,
    bool Detached);

/// <summary>Binary codecs for LMDB keys and values. Every value starts with a format version byte.</summary>
internal static class Records
{
    private const byte Version = 1;

    /// <summary>The state record's version: 2 since producers moved to their own records.</summary>
    private const byte StateVersion = 2;

    /// <summary>
    /// The state record's version once retention has moved the stream's retained start: version 2 plus the start.
    /// Written only for a stream whose start is above 0, so data that never had a prefix dropped stays readable by the
    /// builds before retention, and a build that cannot honour a retained start refuses the data instead of serving
    /// freed (hole-punched) bytes.
    /// </summary>
    private const byte RetainedStateVersion = 3;

    /// <summary>
    /// The state record's version once State-Protocol compaction has replaced a prefix (issue 18): version 3 plus the
    /// offset-space generation, where the current snapshot file's bytes start and the compacted end. Written only for a
    /// compacted stream; builds before compaction refuse it (they cannot read a snapshot file).
    /// </summary>
    private const byte CompactedStateVersion = 4;

    /// <summary>LMDB keys are at most 511 bytes: long names are keyed by their SHA-256 (the name itself is in the meta).</summary>
    public static byte[] NameKey(string name)
    {
        var utf8 = Encoding.UTF8.GetBytes(name);
        if (utf8.Length <= 400)
        {
            var key = new byte[utf8.Length + 1];
            utf8.CopyTo(key, 1);
            return key;
        }
        var hashed = new byte[33];
        hashed[0] = 1;
        SHA256.HashData(utf8, hashed.AsSpan(1));
        return hashed;
    }

    public static byte[] IdKey(long id)
    {
        var key = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(key, id);
        return key;
    }

    public static long ReadId(ReadOnlySpan<byte> key) => BinaryPrimitives.ReadInt64BigEndian(key);

    public static byte[] FrameKey(long id, long start)
    {
        var key = new byte[16];
        BinaryPrimitives.WriteInt64BigEndian(key, id);
        BinaryPrimitives.WriteInt64BigEndian(key.AsSpan(8), start);
        return key;
    }

    public static byte[] FrameValue(Frame frame)
    {
        var value = new byte[9];
        BinaryPrimitives.WriteInt32LittleEndian(value, frame.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), frame.Crc);
        value[8] = frame.Boundary ? (byte)1 : (byte)0;
        return value;
    }

    public static Frame ReadFrame(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => new(
        BinaryPrimitives.ReadInt64BigEndian(key[8..]),
        BinaryPrimitives.ReadInt32LittleEndian(value),
        BinaryPrimitives.ReadUInt32LittleEndian(value[4..]),
        value[8] != 0);

    public static byte[] EncodeMeta(StreamMeta meta)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8))
        {
            w.Write(Version);
            w.Write(meta.Id);
            w.Write(meta.Name);
            w.Write(meta.ContentType);
            WriteNullable(w, meta.TtlSeconds);
            WriteNullable(w, meta.ExpiresAt?.UtcTicks);
            w.Write(meta.CreatedAt.UtcTicks);
            var r = meta.Requested;
            w.Write(r.ContentType);
            WriteNullable(w, r.TtlSeconds);
            WriteNullable(w, r.ExpiresAt?.UtcTicks);
            w.Write(r.ForkSource is not null);
            if (r.ForkSource is not null)
            {
                w.Write(r.ForkSource);
            }
            WriteNullable(w, r.ForkOffset?.Position);
            w.Write(r.ForkSubOffset);
            WriteNullable(w, meta.SourceId);
            w.Write(meta.BasePosition);
            w.Write(meta.SoftDeleted);
            w.Write(meta.Detached);
        }
        return buffer.ToArray();
    }

    public static StreamMeta DecodeMeta(ReadOnlySpan<byte> value)
    {
        using var r = new BinaryReader(new MemoryStream(value.ToArray()), Encoding.UTF8);
        CheckVersion(r.ReadByte());
        var id = r.ReadInt64();
        var name = r.ReadString();
        var contentType = r.ReadString();
        var ttl = ReadNullable(r);
        var expires = ReadNullable(r);
        var created = r.ReadInt64();
        var requestedType = r.ReadString();
        var requestedTtl = ReadNullable(r);
        var requestedExpires = ReadNullable(r);
        var forkSource = r.ReadBoolean() ? r.ReadString() : null;
        var forkOffset = ReadNullable(r);
        var forkSub = r.ReadInt64();
        var sourceId = ReadNullable(r);
        var basePosition = r.ReadInt64();
        var softDeleted = r.ReadBoolean();
        var detached = r.ReadBoolean();
        return new StreamMeta(
            id, name, contentType, ttl, Time(expires), new DateTimeOffset(created, TimeSpan.Zero),
            new StreamConfiguration(requestedType, requestedTtl, Time(requestedExpires), forkSource,
                forkOffset is { } o ? new StreamOffset(o) : null, forkSub),
            sourceId, basePosition, softDeleted, detached);
    }

    /// <summary>
    /// The writer state a commit makes durable with the data it describes. Version 2: tail, closed flag, last
    /// <c>Stream-Seq</c>; producers have their own records (<see cref="EncodeProducer"/>), so the record's size does not
    /// grow with them. Version 3 adds the retained start (int64) and is written only when it is above 0; version 4 (a compacted stream) adds its <see cref="SnapshotSpan"/>. Version 1
    /// (earlier builds) held every producer inline; it is still read.
    /// </summary>
    public static byte[] EncodeState(StreamState state, long retainedStart = 0, SnapshotSpan compacted = default)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8))
        {
            var version = compacted.Generation > 0 ? CompactedStateVersion : retainedStart > 0 ? RetainedStateVersion : StateVersion;
            w.Write(version);
            w.Write(state.Tail);
            w.Write(state.Closed);
            w.Write(state.LastStreamSeq is not null);
            if (state.LastStreamSeq is not null)
            {
                w.Write(state.LastStreamSeq);
            }
            if (version >= RetainedStateVersion)
            {
                w.Write(retainedStart);
            }
            if (version == CompactedStateVersion)
            {
                w.Write(compacted.Generation);
                w.Write(compacted.Start);
                w.Write(compacted.End);
            }
        }
        return buffer.ToArray();
    }

    /// <summary>True for a version 1 state record (producers inline), which is split when written (see <see cref="MetadataStore"/>).</summary>
    public static bool IsInlineProducerState(ReadOnlySpan<byte> value) => value.Length > 0 && value[0] == Version;

    /// <summary>
    /// Reads a state record into <paramref name="state"/>, and the retained start (0 before version 3). A version 1
    /// record's inline producers are returned (null for versions 2 and 3, whose producers are separate records).
    /// </summary>
    public static List<(string Id, ProducerState State)>? DecodeStateInto(ReadOnlySpan<byte> value, StreamState state, out long retainedStart) =>
        DecodeStateInto(value, state, out retainedStart, out _);

    /// <summary>
    /// <see cref="DecodeStateInto(ReadOnlySpan{byte}, StreamState, out long)"/>, and the stream's last compaction
    /// (default before version 4).
    /// </summary>
    public static List<(string Id, ProducerState State)>? DecodeStateInto(ReadOnlySpan<byte> value, StreamState state, out long retainedStart, out SnapshotSpan compacted)
    {
        using var r = new BinaryReader(new MemoryStream(value.ToArray()), Encoding.UTF8);
        var version = r.ReadByte();
        compacted = default;
        if (version is not (Version or StateVersion or RetainedStateVersion or CompactedStateVersion))
        {
            throw new InvalidDataException($"Unsupported state format version {version}: the data directory was written by a newer build.");
        }
        state.Tail = r.ReadInt64();
        state.Closed = r.ReadBoolean();
        state.LastStreamSeq = r.ReadBoolean() ? r.ReadString() : null;
        retainedStart = version >= RetainedStateVersion ? r.ReadInt64() : 0;
        if (version == CompactedStateVersion)
        {
            compacted = new SnapshotSpan(r.ReadInt64(), r.ReadInt64(), r.ReadInt64());
        }
        if (version != Version)
        {
            return null;
        }
        var count = r.ReadInt32();
        var producers = new List<(string, ProducerState)>(count);
        for (var i = 0; i < count; i++)
        {
            var producerId = r.ReadString();
            producers.Add((producerId, new ProducerState(r.ReadInt64(), r.ReadInt64(), new DateTimeOffset(r.ReadInt64(), TimeSpan.Zero))));
        }
        return producers;
    }

    /// <summary>
    /// Key of a producer record: stream id (int64 BE), then <c>0x00</c> + the UTF-8 id (ids up to 400 bytes), or
    /// <c>0x01</c> + its SHA-256 (longer ids written by earlier builds, which had no length limit).
    /// </summary>
    public static byte[] ProducerKey(long streamId, string producerId)
    {
        var name = NameKey(producerId);
        var key = new byte[8 + name.Length];
        BinaryPrimitives.WriteInt64BigEndian(key, streamId);
        name.CopyTo(key, 8);
        return key;
    }

    /// <summary>A producer record (version 1): id, epoch, last seq, updated-at ticks.</summary>
    public static byte[] EncodeProducer(string producerId, ProducerState producer)
    {
        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8))
        {
            w.Write(Version);
            w.Write(producerId);
            w.Write(producer.Epoch);
            w.Write(producer.LastSeq);
            w.Write(producer.UpdatedAt.UtcTicks);
        }
        return buffer.ToArray();
    }

    public static (string Id, ProducerState State) DecodeProducer(ReadOnlySpan<byte> value)
    {
        using var r = new BinaryReader(new MemoryStream(value.ToArray()), Encoding.UTF8);
        CheckVersion(r.ReadByte());
        var producerId = r.ReadString();
        return (producerId, new ProducerState(r.ReadInt64(), r.ReadInt64(), new DateTimeOffset(r.ReadInt64(), TimeSpan.Zero)));
    }

    /// <summary>Key of an append-time sample: stream id, then the position the sampled append started at (both int64 BE).</summary>
    public static byte[] TimeKey(long id, long position) => FrameKey(id, position);

    /// <summary>
    /// The <c>expiring</c> index value: TTL seconds, Expires-At ticks (each -1 when absent) and creation ticks (the
    /// access time of a stream never read), int64 LE each.
    /// </summary>
    public static byte[] EncodeExpiry(StreamMeta meta)
    {
        var value = new byte[24];
        BinaryPrimitives.WriteInt64LittleEndian(value, meta.TtlSeconds ?? -1);
        BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(8), meta.ExpiresAt?.UtcTicks ?? -1);
        BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(16), meta.CreatedAt.UtcTicks);
        return value;
    }

    public static (long? TtlSeconds, DateTimeOffset? ExpiresAt, DateTimeOffset CreatedAt) DecodeExpiry(ReadOnlySpan<byte> value)
    {
        var ttl = BinaryPrimitives.ReadInt64LittleEndian(value);
        var expires = BinaryPrimitives.ReadInt64LittleEndian(value[8..]);
        return (ttl < 0 ? null : ttl,
            expires < 0 ? null : new DateTimeOffset(expires, TimeSpan.Zero),
            new DateTimeOffset(BinaryPrimitives.ReadInt64LittleEndian(value[16..]), TimeSpan.Zero));
    }

    public static byte[] EncodeTicks(long ticks)
    {
        var value = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(value, ticks);
        return value;
    }

    public static long DecodeTicks(ReadOnlySpan<byte> value) => BinaryPrimitives.ReadInt64LittleEndian(value);

    private static void CheckVersion(byte version)
    {
        if (version != Version)
        {
            throw new InvalidDataException($"Unsupported metadata format version {version}.");
        }
    }

    private static DateTimeOffset? Time(long? ticks) => ticks is { } t ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    private static void WriteNullable(BinaryWriter w, long? value)
    {
        w.Write(value.HasValue);
        if (value.HasValue)
        {
            w.Write(value.Value);
        }
    }

    private static long? ReadNullable(BinaryReader r) => r.ReadBoolean() ? r.ReadInt64() : null;
}
