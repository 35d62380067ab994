using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;

namespace DurableStreams.Protocol;

/// <summary>The fields of an SSE <c>control</c> event (§5.8).</summary>
public readonly record struct SseControl(StreamOffset NextOffset, string? Cursor, bool UpToDate, bool Closed);

/// <summary>
/// Writes SSE frames. Data lines are split on CR, LF and CRLF so a payload can never end an event or forge one; a line
/// starting with a space gets one extra space, which parsers strip, so the text round-trips exactly.
/// </summary>
public static class SseFrameWriter
{

    private static ReadOnlySpan<byte> DataEventHeader => "event: data\n"u8;
    private static ReadOnlySpan<byte> ControlEventHeader => "event: control\n"u8;
    private static ReadOnlySpan<byte> DataPrefix => "data:"u8;

    /// <summary>Writes <c>event: data</c> with UTF-8 text payload lines.</summary>
    public static void WriteTextData(ReadOnlySpan<byte> text, IBufferWriter<byte> writer)
    {
        writer.Write(DataEventHeader);
        while (true)
        {
            var end = text.IndexOfAny((byte)'\r', (byte)'\n');
            var line = end < 0 ? text : text[..end];
            writer.Write(DataPrefix);
            if (!line.IsEmpty && line[0] == (byte)' ')
            {
                writer.Write(" "u8);
            }
            writer.Write(line);
            writer.Write("\n"u8);
            if (end < 0)
            {
                break;
            }
            var skip = text[end] == (byte)'\r' && end + 1 < text.Length && text[end + 1] == (byte)'\n' ? 2 : 1;
            text = text[(end + skip)..];
        }
        writer.Write("\n"u8);
    }

    /// <summary>Writes <c>event: data</c> with a multi-segment UTF-8 payload (segments are joined first).</summary>
    public static void WriteTextData(IReadOnlyList<ReadOnlyMemory<byte>> chunks, IBufferWriter<byte> writer)
    {
        if (chunks.Count == 1)
        {
            WriteTextData(chunks[0].Span, writer);
            return;
        }
        WriteTextData(Join(chunks), writer);
    }

    /// <summary>Writes <c>event: data</c> with standard base64 of the bytes, in lines of whole quanta.</summary>
    public static void WriteBase64Data(IReadOnlyList<ReadOnlyMemory<byte>> chunks, IBufferWriter<byte> writer)
    {
        writer.Write(DataEventHeader);
        var bytes = chunks.Count == 1 ? chunks[0].Span : Join(chunks);
        // 3 input bytes per 4 output chars; lines of 3072 bytes → 4096 chars keep every line a multiple of 4.
        const int bytesPerLine = 3072;
        do
        {
            var take = Math.Min(bytesPerLine, bytes.Length);
            var destination = writer.GetSpan(DataPrefix.Length + Base64.GetMaxEncodedToUtf8Length(take) + 1);
            DataPrefix.CopyTo(destination);
            Base64.EncodeToUtf8(bytes[..take], destination[DataPrefix.Length..], out _, out var written);
            destination[DataPrefix.Length + written] = (byte)'\n';
            writer.Advance(DataPrefix.Length + written + 1);
            bytes = bytes[take..];
        }
        while (!bytes.IsEmpty);
        writer.Write("\n"u8);
    }

    /// <summary>Writes a JSON-mode data event: the stored messages as one JSON array, split into lines like text.</summary>
    public static void WriteJsonData(IReadOnlyList<ReadOnlyMemory<byte>> storedChunks, IBufferWriter<byte> writer)
    {
        var buffer = new ArrayBufferWriter<byte>();
        JsonFraming.WriteArray(storedChunks, buffer);
        WriteTextData(buffer.WrittenSpan, writer);
    }

    /// <summary>Writes <c>event: control</c> with camelCase fields; the cursor is omitted when closed.</summary>
    public static void WriteControl(in SseControl control, IBufferWriter<byte> writer)
    {
        writer.Write(ControlEventHeader);
        writer.Write(DataPrefix);
        using (var json = new Utf8JsonWriter(writer))
        {
            json.WriteStartObject();
            json.WriteString("streamNextOffset"u8, control.NextOffset.ToString());
            if (!control.Closed && control.Cursor is not null)
            {
                json.WriteString("streamCursor"u8, control.Cursor);
            }
            if (control.UpToDate || control.Closed)
            {
                json.WriteBoolean("upToDate"u8, true);
            }
            if (control.Closed)
            {
                json.WriteBoolean("streamClosed"u8, true);
            }
            json.WriteEndObject();
        }
        writer.Write("\n\n"u8);
    }

    private static ReadOnlySpan<byte> Join(IReadOnlyList<ReadOnlyMemory<byte>> chunks)
    {
        var total = 0;
        foreach (var chunk in chunks)
        {
            total += chunk.Length;
        }
        var joined = new byte[total];
        var at = 0;
        foreach (var chunk in chunks)
        {
            chunk.Span.CopyTo(joined.AsSpan(at));
            at += chunk.Length;
        }
        return joined;
    }
}
