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
/// depend only on the range (<c>Stream-Next-Offset</c> and the ETag), each built once.
/// </summary>
internal sealed class LivePayload(byte[] body, string nextOffset, string etag)
{
    public ReadOnlyMemory<byte> Body { get; } = body;

    public string NextOffset { get; } = nextOffset;

    public string ETag { get; } = etag;
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
