using System.Buffers;
using System.Collections.Concurrent;
using DurableStreams.Protocol;
using DurableStreams.Core;

namespace DurableStreams.Server.Internal;

/// <summary>How a live payload is encoded.</summary>
internal enum PayloadFormat : byte
{
    JsonArray,
    SseJson,
    SseText,
    SseBase64,
    /// <summary>The stored bytes as they are (a long-poll on a non-JSON stream).</summary>
    Raw,
}

/// <summary>
/// One live delivery, shared by every reader woken at the same range: the encoded body and the response headers that
/// depend only on the range (<c>Stream-Next-Offset</c> and the ETag), each built once; for SSE also the whole frame
/// (data event and control event) of the last cursor asked for.
/// </summary>
internal sealed class LivePayload(byte[] body, string nextOffset, string etag)
{
    /// <summary>The last SSE frame built: readers at one range mostly share one cursor (it changes every 20 s).</summary>
    private SseFrame? _frame;

    public ReadOnlyMemory<byte> Body { get; } = body;

    public string NextOffset { get; } = nextOffset;

    public string ETag { get; } = etag;

    /// <summary>
    /// An SSE delivery of <paramref name="read"/> (the range this payload was built for, in an SSE format): the data
    /// event (<see cref="Body"/>) followed by its control event (next offset, <paramref name="cursor"/>, up-to-date,
    /// closed), byte for byte what writing the two separately gives. Built once and shared by the readers that ask
    /// with the same cursor and up-to-date flag (a closed stream's control has no cursor, so all its readers share);
    /// anything else gets a frame of its own, which then becomes the shared one.
    /// </summary>
    public ReadOnlyMemory<byte> SseFrameFor(ReadResult read, string? cursor)
    {
        var frameCursor = read.Closed ? null : cursor;
        var frame = Volatile.Read(ref _frame);
        if (frame is not null && frame.UpToDate == read.UpToDate && string.Equals(frame.Cursor, frameCursor, StringComparison.Ordinal))
        {
            return frame.Bytes;
        }
        var buffer = new ArrayBufferWriter<byte>(Body.Length + 128);
        buffer.Write(Body.Span);
        SseFrameWriter.WriteControl(new SseControl(read.Next, frameCursor, read.UpToDate, read.Closed), buffer);
        frame = new SseFrame(frameCursor, read.UpToDate, buffer.WrittenMemory.ToArray());
        Volatile.Write(ref _frame, frame);
        return frame.Bytes;
    }

    private sealed record SseFrame(string? Cursor, bool UpToDate, byte[] Bytes);
}

/// <summary>
/// Live readers woken by the same append all ask for the same range; this builds each delivery (encoded payload and
/// range headers) once and shares it. Stored bytes at a range never change, so (incarnation, start, end, generation,
/// closed, format) identifies a delivery forever: a reader is never served another range's bytes or headers. Bounded:
/// small payloads only, and the table is cleared when it fills.
/// </summary>
internal sealed class LivePayloadCache(bool weakETags = false)
{
    private const int MaxEntries = 256;
    /// <summary>Largest payload kept; a larger non-JSON long-poll read is written from the store's chunks instead.</summary>
    public const int MaxPayloadBytes = 64 * 1024;

    private readonly ConcurrentDictionary<Key, LivePayload> _entries = new();

    public int Count => _entries.Count;

    private readonly record struct Key(long Incarnation, long Start, long End, long Generation, bool Closed, PayloadFormat Format);

    public LivePayload Get(ReadResult read, PayloadFormat format)
    {
        var key = new Key(read.Info!.Incarnation, read.Start.Position, read.Next.Position, read.Next.Generation, read.Closed, format);
        if (_entries.TryGetValue(key, out var cached))
        {
            return cached;
        }
        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(int.MaxValue / 2, read.Length * 4 / 3 + 64));
        switch (format)
        {
            case PayloadFormat.JsonArray:
                JsonFraming.WriteArray(read.Chunks, buffer);
                break;
            case PayloadFormat.SseJson:
                SseFrameWriter.WriteJsonData(read.Chunks, buffer);
                break;
            case PayloadFormat.SseText:
                SseFrameWriter.WriteTextData(read.Chunks, buffer);
                break;
            case PayloadFormat.SseBase64:
                SseFrameWriter.WriteBase64Data(read.Chunks, buffer);
                break;
            default:
                foreach (var chunk in read.Chunks)
                {
                    buffer.Write(chunk.Span);
                }
                break;
        }
        var payload = new LivePayload(buffer.WrittenMemory.ToArray(), read.Next.ToString(), ResultMapping.ETag(read, weakETags));
        if (payload.Body.Length <= MaxPayloadBytes)
        {
            if (_entries.Count >= MaxEntries)
            {
                _entries.Clear();
            }
            _entries.TryAdd(key, payload);
        }
        return payload;
    }
}
