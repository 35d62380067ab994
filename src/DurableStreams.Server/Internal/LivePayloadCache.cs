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
}

/// <summary>
/// Live readers woken by the same append all ask for the same range; this builds each encoded payload (JSON array or
/// SSE data event) once and shares it. Stored bytes at a range never change, so (incarnation, start, end, format)
/// identifies the payload forever. Bounded: small payloads only, and the table is cleared when it fills.
/// </summary>
internal sealed class LivePayloadCache
{
    private const int MaxEntries = 256;
    private const int MaxPayloadBytes = 64 * 1024;

    private readonly ConcurrentDictionary<(long Incarnation, long Start, long End, PayloadFormat Format), byte[]> _entries = new();

    public int Count => _entries.Count;

    public ReadOnlyMemory<byte> Get(ReadResult read, PayloadFormat format)
    {
        var key = (read.Info!.Incarnation, read.Start.Position, read.Next.Position, format);
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
            default:
                SseFrameWriter.WriteBase64Data(read.Chunks, buffer);
                break;
        }
        var payload = buffer.WrittenMemory.ToArray();
        if (payload.Length <= MaxPayloadBytes)
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
