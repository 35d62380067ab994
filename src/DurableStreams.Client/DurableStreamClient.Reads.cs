using System.Net.Http.Headers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using DurableStreams.Client.Internal;
using DurableStreams.Protocol;

namespace DurableStreams.Client;

/// <summary>Reads: catch-up, long-poll, SSE and auto, each resuming from the last delivered offset across failures.</summary>
public sealed partial class DurableStreamClient
{
    /// <summary>
    /// Reads from <see cref="ReadOptions.Offset"/>. Catch-up (<see cref="LiveMode.None"/>) ends once up to date; live
    /// modes follow new data until the stream is closed or <paramref name="cancellationToken"/> fires. Every mode ends
    /// after the chunk that reports <see cref="StreamChunk.StreamClosed"/> (EOF).
    /// </summary>
    /// <remarks>
    /// Network errors, dropped connections (on connect or mid-body), timeouts, 429 and 5xx (except 501 and 507) are
    /// retried with <see cref="DurableStreamClientOptions.Retry"/>'s back-off, honouring <c>Retry-After</c> and an SSE
    /// <c>retry:</c> interval, and the read resumes from the offset after the last chunk it delivered, so no data is
    /// repeated or skipped. It gives up when <see cref="ReadOptions.MaxRetries"/> or <see cref="ReadOptions.RetryFor"/>
    /// runs out (a following read by default never does); any other error (400, 401, 403, 404, 410, …) ends it at once.
    /// Either way the <see cref="DurableStreamException"/> carries <see cref="DurableStreamException.ResumeOffset"/>.
    /// </remarks>
    public IAsyncEnumerable<StreamChunk> ReadAsync(string name, ReadOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ReadOptions();
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Offset, nameof(options));
        if (options.MaxRetries is < 0)
        {
            throw new ArgumentException($"MaxRetries must be at least 0 (ReadOptions.MaxRetries); got {options.MaxRetries}.", nameof(options));
        }
        if (options.RetryFor is { } retryFor && retryFor <= TimeSpan.Zero)
        {
            throw new ArgumentException($"RetryFor must be above zero (ReadOptions.RetryFor); got {retryFor}.", nameof(options));
        }
        var url = StreamUrl(name);
        var budget = new RetryBudget(
            options.MaxRetries ?? (options.Live == LiveMode.None ? Math.Max(0, Options.Retry.MaxRetries) : null),
            options.RetryFor,
            Options.TimeProvider);
        var chunks = options.Live switch
        {
            LiveMode.Sse => ReadSseAsync(url, options.Offset, budget, cancellationToken),
            LiveMode.Auto => ReadAutoAsync(url, options.Offset, budget, cancellationToken),
            _ => ReadPollingAsync(url, options.Offset, options.Live == LiveMode.LongPoll, budget, cancellationToken),
        };
        return WithResumeOffsetAsync(chunks, options.Offset, cancellationToken);
    }

    /// <summary>Passes <paramref name="chunks"/> on; an error gets the offset after the last chunk passed on as its <see cref="DurableStreamException.ResumeOffset"/>.</summary>
    private static async IAsyncEnumerable<StreamChunk> WithResumeOffsetAsync(
        IAsyncEnumerable<StreamChunk> chunks, string offset, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var enumerator = chunks.GetAsyncEnumerator(cancellationToken);
        await using (enumerator.ConfigureAwait(false))
        {
            while (true)
            {
                try
                {
                    if (!await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }
                }
                catch (DurableStreamException ex)
                {
                    ex.ResumeOffset = offset;
                    throw;
                }
                var chunk = enumerator.Current;
                offset = chunk.NextOffset;
                yield return chunk;
            }
        }
    }

    private async IAsyncEnumerable<StreamChunk> ReadAutoAsync(Uri url, string offset, RetryBudget budget, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? contentType = null;
        await foreach (var chunk in ReadPollingAsync(url, offset, longPoll: false, budget, cancellationToken, type => contentType ??= type).ConfigureAwait(false))
        {
            offset = chunk.NextOffset;
            yield return chunk;
            if (chunk.StreamClosed)
            {
                yield break;
            }
        }
        var sse = contentType is not null
            && (ContentTypes.IsJson(contentType) || contentType.StartsWith("text/", StringComparison.OrdinalIgnoreCase));
        var follow = sse ? ReadSseAsync(url, offset, budget, cancellationToken) : ReadPollingAsync(url, offset, longPoll: true, budget, cancellationToken);
        await foreach (var chunk in follow.ConfigureAwait(false))
        {
            yield return chunk;
        }
    }

    /// <summary>Reads a JSON stream message by message (each chunk's array is split into its elements).</summary>
    public async IAsyncEnumerable<JsonElement> ReadJsonAsync(string name, ReadOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var chunk in ReadAsync(name, options, cancellationToken).ConfigureAwait(false))
        {
            foreach (var message in JsonMessages(chunk.Data))
            {
                yield return message;
            }
        }
    }

    /// <summary>Reads a JSON stream message by message, deserializing each into <typeparamref name="T"/>.</summary>
    public async IAsyncEnumerable<T?> ReadJsonAsync<T>(string name, ReadOptions? options = null, JsonSerializerOptions? jsonOptions = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var message in ReadJsonAsync(name, options, cancellationToken).ConfigureAwait(false))
        {
            yield return message.Deserialize<T>(jsonOptions);
        }
    }

    /// <summary>
    /// Splits a JSON-mode chunk (a JSON array, or empty) into its messages. Data that is not JSON throws a
    /// <see cref="DurableStreamException"/> with <see cref="DurableStreamErrorCode.ParseError"/>.
    /// </summary>
    public static IReadOnlyList<JsonElement> JsonMessages(ReadOnlyMemory<byte> data)
    {
        if (data.Span.Trim(" \t\r\n"u8).IsEmpty)
        {
            return [];
        }
        using var document = ParseJson(data);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Array)
        {
            return [root.Clone()];
        }
        var messages = new List<JsonElement>(root.GetArrayLength());
        foreach (var element in root.EnumerateArray())
        {
            messages.Add(element.Clone());
        }
        return messages;
    }


    private async IAsyncEnumerable<StreamChunk> ReadPollingAsync(
        Uri url, string offset, bool longPoll, RetryBudget budget, [EnumeratorCancellation] CancellationToken cancellationToken, Action<string?>? onContentType = null)
    {
        string? cursor = null;
        // A long-poll is held by the server until data arrives or its own timeout: a short RequestTimeout must not cut it off.
        TimeSpan? timeout = longPoll && Options.LongPollTimeout > Options.RequestTimeout ? Options.LongPollTimeout : null;
        while (true)
        {
            var requestUrl = ReadUrl(url, offset, longPoll ? ProtocolQuery.LongPoll : null, cursor);
            // The whole body is read before the chunk is yielded: a connection that breaks mid-body is retried from
            // the same offset, and nothing of the broken response reaches the caller.
            var chunk = await ExecuteAsync(
                () => new HttpRequestMessage(HttpMethod.Get, requestUrl),
                retry: true,
                async (response, token) =>
                {
                    onContentType?.Invoke(response.Content.Headers.ContentType?.ToString() ?? ResponseHeaders.Get(response, "Content-Type"));
                    var timedOut = response.StatusCode == HttpStatusCode.NoContent;
                    var data = timedOut ? [] : await response.Content.ReadAsByteArrayAsync(token).ConfigureAwait(false);
                    return new StreamChunk(
                        data,
                        RequireNextOffset(response),
                        timedOut || ResponseHeaders.Flag(response, ProtocolHeaders.StreamUpToDate),
                        ResponseHeaders.Flag(response, ProtocolHeaders.StreamClosed),
                        ResponseHeaders.Get(response, ProtocolHeaders.StreamCursor));
                },
                cancellationToken,
                budget: budget,
                timeout: timeout).ConfigureAwait(false);
            budget.Progress();
            offset = chunk.NextOffset;
            cursor = chunk.Cursor ?? cursor;
            // A long-poll that timed out (204) is yielded too, as an empty up-to-date chunk: it carries the offset the
            // server resolved (for example from "now"), so a caller that stops here resumes from the right place.
            yield return chunk;
            if (chunk.StreamClosed || (!longPoll && chunk.UpToDate))
            {
                yield break;
            }
        }
    }

    private async IAsyncEnumerable<StreamChunk> ReadSseAsync(Uri url, string offset, RetryBudget budget, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? cursor = null;
        TimeSpan? reconnectDelay = null; // the server's retry: interval, once it sent one
        bool? json = null; // learnt (HEAD) only when a batch has several text data events to join
        while (true)
        {
            var requestUrl = ReadUrl(url, offset, ProtocolQuery.Sse, cursor);
            var response = await ExecuteAsync(
                () =>
                {
                    var request = new HttpRequestMessage(HttpMethod.Get, requestUrl);
                    request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
                    return request;
                },
                retry: true,
                static (response, _) => Task.FromResult(response),
                cancellationToken,
                keepResponse: true,
                budget: budget).ConfigureAwait(false);
            var progressed = false;
            Exception? broken = null;
            using (response)
            {
                var base64 = string.Equals(ResponseHeaders.Get(response, ProtocolHeaders.StreamSseDataEncoding), "base64", StringComparison.OrdinalIgnoreCase);
                using var reader = new SseEventReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
                // A server may send several data events before one control event; every one of them is delivered. The
                // data events of a batch whose control event never arrives (a broken connection) are dropped: the
                // reconnect resumes at the last control event's offset and gets them again.
                var pending = new List<byte[]>();
                while (true)
                {
                    SseEvent? next;
                    try
                    {
                        next = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
                    {
                        next = null;
                        broken = ex;
                    }
                    reconnectDelay = reader.RetryInterval ?? reconnectDelay;
                    if (next is not { } sse)
                    {
                        break;
                    }
                    if (sse.Type == "data")
                    {
                        pending.Add(base64 ? DecodeBase64(sse.Data) : Encoding.UTF8.GetBytes(sse.Data));
                        continue;
                    }
                    if (sse.Type != "control")
                    {
                        continue;
                    }
                    if (pending.Count > 1 && !base64)
                    {
                        json ??= await IsJsonStreamAsync(url, budget, cancellationToken).ConfigureAwait(false);
                    }
                    var chunk = ParseControl(sse.Data, JoinDataEvents(pending, json == true));
                    pending.Clear();
                    progressed = true;
                    budget.Progress();
                    offset = chunk.NextOffset;
                    cursor = chunk.Cursor ?? cursor;
                    yield return chunk;
                    if (chunk.StreamClosed)
                    {
                        yield break;
                    }
                }
            }
            if (progressed && broken is null)
            {
                // The server ended the response (its connection lifetime): reconnect, after its retry: interval if it gave one.
                if (reconnectDelay is { } interval && interval > TimeSpan.Zero)
                {
                    await Task.Delay(interval, Options.TimeProvider, cancellationToken).ConfigureAwait(false);
                }
                continue;
            }
            // A broken connection, or one that ended without an event: back off before reconnecting, and give up once the budget is spent.
            var reason = broken is null ? "The SSE connection ended without events." : $"The SSE connection broke: {broken.Message}";
            if (!budget.TryRetry(out var attempt, out var longestDelay))
            {
                DurableStreamException.ThrowUnavailable(reason, broken);
            }
            await DelayBeforeRetryAsync(attempt, reconnectDelay, longestDelay, reason, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Whether the stream at <paramref name="url"/> is a JSON stream (HEAD's Content-Type).</summary>
    private Task<bool> IsJsonStreamAsync(Uri url, RetryBudget budget, CancellationToken cancellationToken) =>
        ExecuteAsync(
            () => new HttpRequestMessage(HttpMethod.Head, url),
            retry: true,
            static (response, _) => Task.FromResult(
                (response.Content.Headers.ContentType?.ToString() ?? ResponseHeaders.Get(response, "Content-Type")) is { } type && ContentTypes.IsJson(type)),
            cancellationToken,
            budget: budget);

    /// <summary>
    /// The data of one batch (the data events before a control event), in order: bytes and text are concatenated; on a
    /// JSON stream each event is a JSON array (or a single value), and the batch becomes one array of all their messages.
    /// </summary>
    internal static ReadOnlyMemory<byte> JoinDataEvents(IReadOnlyList<byte[]> events, bool json)
    {
        if (events.Count == 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }
        if (events.Count == 1)
        {
            return events[0];
        }
        var joined = new MemoryStream(events.Sum(e => e.Length) + 2);
        if (!json)
        {
            foreach (var part in events)
            {
                joined.Write(part);
            }
            return joined.GetBuffer().AsMemory(0, (int)joined.Length);
        }
        joined.WriteByte((byte)'[');
        var first = true;
        foreach (var part in events)
        {
            ReadOnlySpan<byte> items = part.AsSpan().Trim(" \t\r\n"u8);
            if (items.Length >= 2 && items[0] == (byte)'[' && items[^1] == (byte)']')
            {
                items = items[1..^1].Trim(" \t\r\n"u8);
            }
            if (items.IsEmpty)
            {
                continue;
            }
            if (!first)
            {
                joined.WriteByte((byte)',');
            }
            joined.Write(items);
            first = false;
        }
        joined.WriteByte((byte)']');
        return joined.GetBuffer().AsMemory(0, (int)joined.Length);
    }

    private static JsonDocument ParseJson(ReadOnlyMemory<byte> data)
    {
        try
        {
            return JsonDocument.Parse(data);
        }
        catch (JsonException ex)
        {
            throw new DurableStreamException(DurableStreamErrorCode.ParseError, null, "The stream's data is not valid JSON: " + ex.Message, ex);
        }
    }

    private static StreamChunk ParseControl(string json, ReadOnlyMemory<byte> data)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var next = root.TryGetProperty("streamNextOffset", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            if (next is null)
            {
                throw new DurableStreamException(DurableStreamErrorCode.ParseError, null, "An SSE control event lacks streamNextOffset.");
            }
            var cursor = root.TryGetProperty("streamCursor", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
            var closed = root.TryGetProperty("streamClosed", out var s) && s.ValueKind == JsonValueKind.True;
            var upToDate = closed || (root.TryGetProperty("upToDate", out var u) && u.ValueKind == JsonValueKind.True);
            return new StreamChunk(data, next, upToDate, closed, cursor);
        }
        catch (JsonException ex)
        {
            throw new DurableStreamException(DurableStreamErrorCode.ParseError, null, "An SSE control event is not valid JSON.", ex);
        }
    }

    private static byte[] DecodeBase64(string text)
    {
        var compact = text.Replace("\n", string.Empty, StringComparison.Ordinal).Replace("\r", string.Empty, StringComparison.Ordinal);
        try
        {
            return Convert.FromBase64String(compact);
        }
        catch (FormatException ex)
        {
            throw new DurableStreamException(DurableStreamErrorCode.ParseError, null, "An SSE data event is not valid base64.", ex);
        }
    }

    private static Uri ReadUrl(Uri url, string offset, string? live, string? cursor)
    {
        var builder = new StringBuilder(url.ToString());
        builder.Append('?').Append(ProtocolQuery.Offset).Append('=').Append(Uri.EscapeDataString(offset));
        if (live is not null)
        {
            builder.Append('&').Append(ProtocolQuery.Live).Append('=').Append(live);
        }
        if (cursor is not null)
        {
            builder.Append('&').Append(ProtocolQuery.Cursor).Append('=').Append(Uri.EscapeDataString(cursor));
        }
        return new Uri(builder.ToString());
    }
}
