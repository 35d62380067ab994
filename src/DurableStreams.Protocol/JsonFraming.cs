using System.Buffers;
using System.Text.Json;

namespace DurableStreams.Protocol;

/// <summary>Why a JSON body was refused.</summary>
public enum JsonFramingError
{
    None,
    /// <summary>The body is not one valid JSON value.</summary>
    Invalid,
    /// <summary>The body is <c>[]</c> on an append (§9.1.3).</summary>
    EmptyArray,
    /// <summary>The body nests deeper than the configured limit.</summary>
    TooDeep,
    /// <summary>The body's top-level array holds more values than the configured limit.</summary>
    TooManyMessages,
}

/// <summary>
/// JSON mode (§9.1): validates a body and flattens one level of a top-level array into messages. Each stored message is
/// its source text as sent (validated, never re-serialized) followed by a comma, so a read of whole messages becomes a JSON array by adding brackets and
/// dropping the last comma, without re-parsing.
/// </summary>
public static class JsonFraming
{
    /// <summary>Default nesting limit; deeper bodies are answered with 400 rather than risking deep recursion anywhere.</summary>
    public const int DefaultMaxDepth = 64;

    /// <summary>
    /// Splits <paramref name="body"/> into messages. On success <paramref name="messages"/> holds each message's stored
    /// form (<c>value,</c>). An empty top-level array yields zero messages (valid on PUT, refused on POST by the caller).
    /// </summary>
    public static JsonFramingError TrySplit(ReadOnlyMemory<byte> body, int maxDepth, out List<ReadOnlyMemory<byte>> messages) =>
        TrySplit(body, maxDepth, int.MaxValue, out messages);

    /// <summary>
    /// <see cref="TrySplit(ReadOnlyMemory{byte}, int, out List{ReadOnlyMemory{byte}})"/> that stops with
    /// <see cref="JsonFramingError.TooManyMessages"/> as soon as the top-level array holds more than
    /// <paramref name="maxMessages"/> values, before anything is copied.
    /// </summary>
    public static JsonFramingError TrySplit(ReadOnlyMemory<byte> body, int maxDepth, int maxMessages, out List<ReadOnlyMemory<byte>> messages)
    {
        var error = TrySplitValues(body, maxDepth, maxMessages, out messages);
        if (error == JsonFramingError.None)
        {
            Frame(messages);
        }
        return error;
    }

    /// <summary>
    /// Validates and splits <paramref name="body"/> like <see cref="TrySplit(ReadOnlyMemory{byte}, int, int, out List{ReadOnlyMemory{byte}})"/>
    /// but copies nothing: <paramref name="values"/> holds each value as a slice of the borrowed body, without its
    /// trailing comma. A store that copies the values anyway adds the comma itself (or calls <see cref="Frame"/>).
    /// </summary>
    public static JsonFramingError TrySplitValues(ReadOnlyMemory<byte> body, int maxDepth, int maxMessages, out List<ReadOnlyMemory<byte>> values)
    {
        var error = Split(body, maxDepth, maxMessages, out values);
        if (error != JsonFramingError.None)
        {
            values = [];
        }
        return error;
    }

    private static JsonFramingError Split(ReadOnlyMemory<byte> body, int maxDepth, int maxMessages, out List<ReadOnlyMemory<byte>> messages)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxMessages);
        messages = [];
        // Utf8JsonReader does not validate the bytes inside strings; §9.1.4 requires valid JSON, which is UTF-8.
        if (!System.Text.Unicode.Utf8.IsValid(body.Span))
        {
            return JsonFramingError.Invalid;
        }
        var reader = new Utf8JsonReader(body.Span, new JsonReaderOptions { MaxDepth = maxDepth, CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            if (!reader.Read())
            {
                return JsonFramingError.Invalid;
            }
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (messages.Count == maxMessages)
                    {
                        messages = [];
                        return JsonFramingError.TooManyMessages;
                    }
                    var start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    messages.Add(body[start..(int)reader.BytesConsumed]);
                }
                if (reader.TokenType != JsonTokenType.EndArray)
                {
                    return JsonFramingError.Invalid;
                }
            }
            else
            {
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                messages.Add(body[start..(int)reader.BytesConsumed]);
            }
            // Exactly one top-level value: anything after it but whitespace is an error.
            if (reader.Read())
            {
                return JsonFramingError.Invalid;
            }
            return JsonFramingError.None;
        }
        catch (JsonException)
        {
            // The reader stops at the token that would exceed the limit, so its depth tells the two failures apart.
            return reader.CurrentDepth >= maxDepth - 1 ? JsonFramingError.TooDeep : JsonFramingError.Invalid;
        }
    }

    /// <summary>
    /// Replaces the values (slices of the borrowed body, as <see cref="TrySplitValues"/> returns them) with their stored
    /// forms (<c>value,</c>), all in one new array: one allocation per request rather than one per message.
    /// </summary>
    public static void Frame(List<ReadOnlyMemory<byte>> values)
    {
        if (values.Count == 0)
        {
            return;
        }
        var total = values.Count;
        foreach (var value in values)
        {
            total += value.Length;
        }
        var stored = new byte[total];
        var position = 0;
        for (var i = 0; i < values.Count; i++)
        {
            var value = values[i];
            value.Span.CopyTo(stored.AsSpan(position));
            stored[position + value.Length] = (byte)',';
            values[i] = stored.AsMemory(position, value.Length + 1);
            position += value.Length + 1;
        }
    }

    /// <summary>The byte length <see cref="WriteArray"/> produces for stored messages of <paramref name="storedLength"/> bytes.</summary>
    public static long ArrayLength(long storedLength) => storedLength == 0 ? 2 : storedLength + 1;

    /// <summary>
    /// Writes whole stored messages as one JSON array: <c>[</c>, the messages without the final comma, <c>]</c>.
    /// </summary>
    public static void WriteArray(IReadOnlyList<ReadOnlyMemory<byte>> storedChunks, IBufferWriter<byte> writer)
    {
        writer.Write("["u8);
        var total = 0L;
        foreach (var chunk in storedChunks)
        {
            total += chunk.Length;
        }
        var remaining = total - 1; // drop the trailing comma of the last message
        foreach (var chunk in storedChunks)
        {
            if (remaining <= 0)
            {
                break;
            }
            var take = (int)Math.Min(chunk.Length, remaining);
            writer.Write(chunk.Span[..take]);
            remaining -= take;
        }
        writer.Write("]"u8);
    }
}
