using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using DurableStreams.Protocol;

namespace DurableStreams.Cli;

/// <summary>How <c>read</c> writes what it reads.</summary>
internal enum ReadFormat
{
    /// <summary>The bytes as stored; a JSON stream's chunks as JSON arrays, each followed by a newline.</summary>
    Raw,

    /// <summary>One JSON array of every message read (JSON streams).</summary>
    Json,

    /// <summary>One compact JSON message per line (JSON streams).</summary>
    JsonLines,

    /// <summary>Each message as indented JSON followed by a newline (JSON streams).</summary>
    Pretty,
}

/// <summary>
/// Writes read chunks to standard output in a <see cref="ReadFormat"/>, stops at <c>--max-bytes</c> or
/// <c>--max-messages</c>, and tracks the exact offset reached, also when it stops inside a chunk.
/// </summary>
/// <remarks>
/// Limits count stream data. For JSON streams a message is one JSON value, and <c>--max-bytes</c> keeps whole messages
/// whose compact sizes add up to at most the limit (at least nothing past it). For other streams a message is a line
/// ending in '\n', and <c>--max-bytes</c> cuts at exactly that many bytes. The offset after a partial chunk is computed
/// from the chunk's end offset when the server's offsets are byte positions (as this project's are: a JSON chunk stores
/// each message as its compact text followed by one separator byte), which shows as a chunk's start and end offsets
/// lying exactly its stored size apart. Offsets are opaque to the protocol, and other servers' are not positions (the
/// Node reference server's count framing too): then a partial chunk resumes from the chunk's start offset, which
/// re-reads part of it rather than skip data.
/// </remarks>
internal sealed class ReadOutput
{
    private static readonly JsonWriterOptions s_pretty = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonWriterOptions s_compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly Stream _output;
    private readonly ReadFormat _format;
    private readonly bool _json;
    private readonly long? _maxBytes;
    private readonly long? _maxMessages;
    private readonly ArrayBufferWriter<byte> _buffer = new();
    private long _bytes;
    private long _messages;
    private bool _openedArray;
    private string _chunkStart;

    /// <summary>An output for a read that starts at <paramref name="startOffset"/> (<c>-1</c>, <c>now</c> or a server-issued offset).</summary>
    public ReadOutput(Stream output, ReadFormat format, bool json, long? maxBytes, long? maxMessages, string startOffset = "-1")
    {
        _chunkStart = startOffset;
        _output = output;
        _format = format;
        _json = json;
        _maxBytes = maxBytes;
        _maxMessages = maxMessages;
    }

    /// <summary>The offset to resume from: after the last byte or message written; null before the first chunk.</summary>
    public string? Offset { get; private set; }

    /// <summary>True once a limit is reached; the caller stops reading.</summary>
    public bool LimitReached { get; private set; }

    /// <summary>Stream data bytes written so far (before formatting).</summary>
    public long Bytes => _bytes;

    /// <summary>Writes one chunk (its data ends at <paramref name="nextOffset"/>), up to the limits.</summary>
    public async Task WriteAsync(ReadOnlyMemory<byte> data, string nextOffset, CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        if (_format == ReadFormat.Json && !_openedArray)
        {
            _buffer.Write("["u8);
            _openedArray = true;
        }

        if (!data.IsEmpty)
        {
            var (remaining, stored) = _json ? WriteJson(data) : WriteBytes(data);
            Offset = remaining == 0 ? nextOffset : OffsetBefore(_chunkStart, nextOffset, stored, remaining);
        }
        else
        {
            Offset = nextOffset;
        }

        _chunkStart = nextOffset;

        await FlushAsync(cancellationToken);
    }

    /// <summary>Ends the output: closes the JSON array of <see cref="ReadFormat.Json"/>, even after Ctrl+C.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        if (_format == ReadFormat.Json)
        {
            _buffer.Write(_openedArray ? "]\n"u8 : "[]\n"u8);
            _openedArray = false;
        }

        await FlushAsync(cancellationToken);
    }

    /// <summary>Non-JSON data: the bytes, cut at <c>--max-bytes</c> or after the line that reaches <c>--max-messages</c>. Returns the bytes left unwritten and the chunk's size.</summary>
    private (long Remaining, long Stored) WriteBytes(ReadOnlyMemory<byte> data)
    {
        var span = data.Span;
        var take = span.Length;
        if (_maxBytes is { } maxBytes && _bytes + take >= maxBytes)
        {
            take = (int)(maxBytes - _bytes);
            LimitReached = true;
        }

        if (_maxMessages is { } maxMessages)
        {
            var lines = _messages;
            for (var i = 0; i < take; i++)
            {
                if (span[i] == (byte)'\n' && ++lines == maxMessages)
                {
                    take = i + 1;
                    LimitReached = true;
                    break;
                }
            }

            _messages = lines;
        }

        _buffer.Write(span[..take]);
        _bytes += take;
        return (span.Length - take, span.Length);
    }

    /// <summary>
    /// JSON data (one array per chunk): whole messages up to the limits, in the format. Returns the stored bytes left
    /// unwritten and the chunk's stored size (each message is stored as its compact text and one separator).
    /// </summary>
    private (long Remaining, long Stored) WriteJson(ReadOnlyMemory<byte> data)
    {
        var messages = Split(data.Span);
        var kept = 0;
        long consumed = 0;
        foreach (var (start, length) in messages)
        {
            if ((_maxMessages is { } maxMessages && _messages >= maxMessages)
                || (_maxBytes is { } maxBytes && _bytes + length > maxBytes))
            {
                LimitReached = true;
                break;
            }

            var message = data.Span.Slice(start, length);
            WriteMessage(message, kept);
            kept++;
            _messages++;
            _bytes += length;
            consumed += length + 1; // stored as the compact text and one separator
        }

        if (_maxMessages is { } max && _messages >= max)
        {
            LimitReached = true;
        }

        if (_format == ReadFormat.Raw && kept > 0)
        {
            // One array per line: the output ends in a newline (no prompt glued to it) and a follower sees whole lines.
            _buffer.Write("]\n"u8);
        }

        long stored = 0;
        foreach (var (_, length) in messages)
        {
            stored += length + 1;
        }

        return (stored - consumed, stored);
    }

    private void WriteMessage(ReadOnlySpan<byte> message, int indexInChunk)
    {
        switch (_format)
        {
            case ReadFormat.Raw:
                _buffer.Write(indexInChunk == 0 ? "["u8 : ","u8);
                _buffer.Write(message);
                break;
            case ReadFormat.Json:
                if (_messages > 0)
                {
                    _buffer.Write(","u8);
                }

                _buffer.Write(message);
                break;
            case ReadFormat.JsonLines:
                if (message.IndexOfAny(" \t\r\n"u8) < 0)
                {
                    _buffer.Write(message);
                }
                else
                {
                    // Stored as sent: compact it so the message stays on one line.
                    WriteReformatted(message, s_compact);
                }

                _buffer.Write("\n"u8);
                break;
            case ReadFormat.Pretty:
                WriteReformatted(message, s_pretty);
                _buffer.Write("\n"u8);
                break;
        }
    }

    private void WriteReformatted(ReadOnlySpan<byte> message, JsonWriterOptions options)
    {
        using var document = JsonDocument.Parse(message.ToArray());
        using var writer = new Utf8JsonWriter(_buffer, options);
        document.RootElement.WriteTo(writer);
    }

    /// <summary>The (start, length) of each element of a JSON array; a lone value counts as one message.</summary>
    public static List<(int Start, int Length)> Split(ReadOnlySpan<byte> data)
    {
        var messages = new List<(int, int)>();
        var reader = new Utf8JsonReader(data, new JsonReaderOptions { MaxDepth = 256 });
        if (!reader.Read())
        {
            return messages;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            messages.Add((start, (int)reader.BytesConsumed - start));
            return messages;
        }

        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            messages.Add((start, (int)reader.BytesConsumed - start));
        }

        return messages;
    }

    /// <summary>
    /// The offset <paramref name="bytes"/> before <paramref name="end"/> when the chunk from <paramref name="start"/> to
    /// <paramref name="end"/> shows byte-position offsets (they lie <paramref name="stored"/> apart); else
    /// <paramref name="start"/>, from which a resumed read re-reads the chunk instead of skipping part of it.
    /// </summary>
    private static string OffsetBefore(string start, string end, long stored, long bytes)
    {
        long? from = start == ProtocolQuery.BeginningSentinel ? 0 : StreamOffset.TryParse(start, out var s) ? s.Position : null;
        return from is { } position && StreamOffset.TryParse(end, out var e) && e.Position - position == stored && e.Position >= bytes
            ? new StreamOffset(e.Position - bytes).ToString()
            : start;
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_buffer.WrittenCount > 0)
        {
            await _output.WriteAsync(_buffer.WrittenMemory, cancellationToken);
        }

        // Each chunk is flushed so a pipe or a terminal sees followed data as it arrives.
        await _output.FlushAsync(cancellationToken);
    }
}
