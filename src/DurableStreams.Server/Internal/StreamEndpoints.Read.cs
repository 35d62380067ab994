using System.Buffers;
using DurableStreams.Protocol;
using DurableStreams.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace DurableStreams.Server.Internal;

internal sealed partial class StreamEndpoints
{
    /// <summary>
    /// A GET: catch-up, long-poll or SSE. Not itself async: it hands over the chosen reader's task, so a live reader
    /// holds no state machine of this method for its whole life (the live reader gives its slot back itself).
    /// </summary>
    private Task ReadAsync(HttpContext context, string name)
    {
        var error = RequestParsing.ParseRead(context.Request, out var offset, out var mode, out var clientCursor);
        if (error is { } e)
        {
            return e.WriteAsync(context.Response);
        }
        if (mode == RequestParsing.LiveMode.CatchUp)
        {
            return CatchUpAsync(context, name, offset);
        }
        var sse = mode == RequestParsing.LiveMode.Sse;
        if (!_liveReaders.TryEnter(sse))
        {
            context.Response.Headers.RetryAfter = LiveReadersRetryAfter;
            _metrics.Rejected(RejectionReasons.LiveReadersFull);
            return _liveReadersFull.WriteAsync(context.Response);
        }
        return sse ? SseAsync(context, name, offset, clientCursor) : LongPollAsync(context, name, offset, clientCursor);
    }

    /// <summary>Seconds a client turned away by <see cref="DurableStreamsOptions.MaxLiveReaders"/> should wait.</summary>
    private const string LiveReadersRetryAfter = "5";

    /// <summary>
    /// Most bytes one live read (long-poll, SSE) returns, and the most a capped JSON catch-up response
    /// (<see cref="DurableStreamsOptions.MaxReadChunkBytes"/>) holds. A catch-up response may be longer (to the tail,
    /// or up to the cap when set): it is read and sent in slices of <see cref="CatchUpSliceBytes"/>.
    /// </summary>
    internal const int ReadPieceBytes = 1024 * 1024;

    /// <summary>
    /// Most bytes a catch-up response reads from the store at once and hands to Kestrel before flushing, and so about
    /// what it holds in memory whatever its length: each slice is written and flushed (waiting for the socket when
    /// Kestrel's response buffer is full) before the next is read. Equal to the file store's largest frame and to
    /// Kestrel's default response buffer; a JSON slice takes at least one whole message.
    /// </summary>
    internal const int CatchUpSliceBytes = 64 * 1024;

    private int PieceBytes => Math.Min(_options.MaxReadChunkBytes ?? ReadPieceBytes, ReadPieceBytes);

    private int SliceBytes => Math.Min(PieceBytes, CatchUpSliceBytes);

    private async Task CatchUpAsync(HttpContext context, string name, OffsetQuery offset)
    {
        using var read = await FirstCatchUpReadAsync(name, offset, context.RequestAborted);
        if (read.Status != ReadStatus.Ok)
        {
            await ResultMapping.WriteReadErrorAsync(context.Response, read.Status, read.Info);
            return;
        }
        var served = CatchUpRange(read);
        var response = context.Response;
        if (offset.Kind == OffsetKind.Now)
        {
            // §8: the tail position must not be cached.
            response.Headers.CacheControl = "no-store";
        }
        else
        {
            var etag = ETagFor(served);
            response.Headers.ETag = etag;
            WriteCacheHeaders(response);
            if (IfNoneMatch(context.Request, etag))
            {
                WriteReadHeaders(response, served, cursor: null);
                response.StatusCode = StatusCodes.Status304NotModified;
                return;
            }
        }
        if (ReferenceEquals(served, read))
        {
            await WriteDataAsync(context, read, cursor: null);
            return;
        }
        await WriteLongCatchUpAsync(context, name, read, served);
    }

    /// <summary>
    /// The first read of a catch-up response: one slice, which decides the response's range with
    /// <see cref="CatchUpRange"/> as a whole piece would (a byte stream's range is the tail or the cap either way). A
    /// capped JSON response is the one exception: its end is where a read of the whole cap stops (a message boundary),
    /// so a slice that did not reach the tail is read again as that read.
    /// </summary>
    private async ValueTask<ReadResult> FirstCatchUpReadAsync(string name, OffsetQuery offset, CancellationToken cancellationToken)
    {
        var read = await store.ReadAsync(name, new ReadRequest(offset, SliceBytes), cancellationToken);
        if (read.Status != ReadStatus.Ok || read.UpToDate || _options.MaxReadChunkBytes is null || SliceBytes == PieceBytes || !ContentTypes.IsJson(read.Info!.ContentType))
        {
            return read;
        }
        read.Dispose();
        return await store.ReadAsync(name, new ReadRequest(offset, PieceBytes), cancellationToken);
    }

    /// <summary>
    /// What a catch-up response covers: the first read, or, with more committed data after it, everything up to the
    /// tail the first read saw (data below it is immutable, so the rest can be read piece by piece and the headers are
    /// right in advance). With <see cref="DurableStreamsOptions.MaxReadChunkBytes"/> set, a byte stream's response
    /// stops at that many bytes from its start, and a JSON response stays one piece: a capped end must fall on a
    /// message boundary, known only once read (the tail always is one).
    /// </summary>
    private ReadResult CatchUpRange(ReadResult read)
    {
        var info = read.Info!;
        var cap = _options.MaxReadChunkBytes;
        if (read.UpToDate || read.Length == 0 || (cap is not null && (ContentTypes.IsJson(info.ContentType) || cap <= read.Length)))
        {
            return read;
        }
        var end = cap is { } max ? Math.Min(info.Tail.Position, read.Start.Position + max) : info.Tail.Position;
        if (end <= read.Next.Position)
        {
            return read;
        }
        var reachesTail = end == info.Tail.Position;
        return new ReadResult
        {
            Status = ReadStatus.Ok,
            Info = info,
            Start = read.Start,
            Next = new StreamOffset(end) { Generation = read.Next.Generation },
            UpToDate = reachesTail,
            Closed = reachesTail && info.Closed,
            Length = end - read.Start.Position,
        };
    }

    /// <summary>
    /// Sends <paramref name="served"/>: the first read's bytes, then the rest one slice (<see cref="CatchUpSliceBytes"/>)
    /// at a time, each read straight into the response's buffer and flushed before the next. The headers promised
    /// the whole range; should the stream vanish midway (deleted, expired), the connection is aborted rather than the
    /// body cut short silently.
    /// </summary>
    private async Task WriteLongCatchUpAsync(HttpContext context, string name, ReadResult first, ReadResult served)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = served.Info!.ContentType;
        WriteReadHeaders(response, served, cursor: null);
        if (ContentTypes.IsJson(served.Info.ContentType))
        {
            await WriteLongJsonCatchUpAsync(context, name, first, served);
            return;
        }
        var aborted = context.RequestAborted;
        response.ContentLength = served.Length;
        _metrics.Sent(served.Length);
        var writer = response.BodyWriter;
        foreach (var chunk in first.Chunks)
        {
            await writer.WriteAsync(chunk, aborted);
        }
        var position = first.Next.Position;
        var end = served.Next.Position;
        while (position < end)
        {
            // Read straight into the response's own buffer (one copy fewer than writing a store's chunks into it).
            // Ending where the store's own units end (the file store's frames), so no slice re-reads a cut one; a hint
            // outside (position, position + slice] is ignored.
            var hinted = store is IDirectReadStore direct ? direct.ReadEnd(name, position, SliceBytes) - position : SliceBytes;
            var want = (int)Math.Min(hinted > 0 && hinted < SliceBytes ? hinted : SliceBytes, end - position);
            var memory = writer.GetMemory(want);
            var length = Math.Min(want, memory.Length);
            var status = await store.ReadIntoAsync(name, position, memory[..length], aborted);
            if (status != ReadStatus.Ok)
            {
                context.Abort();
                return;
            }
            writer.Advance(length);
            var flushed = await writer.FlushAsync(aborted);
            if (flushed.IsCanceled || flushed.IsCompleted)
            {
                return;
            }
            position += length;
        }
    }

    /// <summary>
    /// A JSON catch-up to the tail as one array: <c>[</c>, the stored messages slice by slice (each stored message ends
    /// in a comma, so slices join without re-parsing), the last message without its comma, <c>]</c>. Every slice is a
    /// store read of whole messages (<see cref="CatchUpSliceBytes"/>, or one larger message), flushed before the next;
    /// the tail the first read saw is a message boundary, so a slice reaching past it (appended since) is cut there.
    /// </summary>
    private async Task WriteLongJsonCatchUpAsync(HttpContext context, string name, ReadResult first, ReadResult served)
    {
        var aborted = context.RequestAborted;
        var response = context.Response;
        var length = JsonFraming.ArrayLength(served.Length);
        response.ContentLength = length;
        _metrics.Sent(length);
        var writer = response.BodyWriter;
        var end = served.Next.Position;
        writer.Write("["u8);
        // Everything before the last byte in range (the final comma) goes out as stored.
        var remaining = end - 1 - first.Start.Position;
        if (!await WriteChunksAsync(first.Chunks))
        {
            return;
        }
        var position = first.Next.Position;
        while (position < end)
        {
            using var piece = await store.ReadAsync(name, new ReadRequest(OffsetQuery.At(new StreamOffset(position) { Generation = first.Next.Generation }), SliceBytes), aborted);
            if (piece.Status != ReadStatus.Ok || piece.Start.Position != position || piece.Length <= 0)
            {
                context.Abort();
                return;
            }
            if (!await WriteChunksAsync(piece.Chunks))
            {
                return;
            }
            position = Math.Min(piece.Next.Position, end);
        }
        writer.Write("]"u8);
        await writer.FlushAsync(aborted);

        async ValueTask<bool> WriteChunksAsync(IReadOnlyList<ReadOnlyMemory<byte>> chunks)
        {
            foreach (var chunk in chunks)
            {
                if (remaining <= 0)
                {
                    break;
                }
                var take = (int)Math.Min(chunk.Length, remaining);
                writer.Write(chunk.Span[..take]);
                remaining -= take;
            }
            var flushed = await writer.FlushAsync(aborted);
            return !flushed.IsCanceled && !flushed.IsCompleted;
        }
    }

    /// <summary>
    /// Cache-Control of a cacheable data response by <see cref="DurableStreamsOptions.CachePolicy"/>; a private one also
    /// varies by Authorization (added to any Vary already set, such as Origin or Accept-Encoding).
    /// </summary>
    private void WriteCacheHeaders(HttpResponse response)
    {
        if (_privateCaching)
        {
            response.Headers.CacheControl = "private, max-age=60, stale-while-revalidate=300";
            response.Headers.Append(Microsoft.Net.Http.Headers.HeaderNames.Vary, "Authorization");
        }
        else
        {
            response.Headers.CacheControl = "public, max-age=60, stale-while-revalidate=300";
        }
    }

    /// <summary>The read's ETag; weak when compression may change the body's encoding (see <see cref="DurableStreamsOptions.Compression"/>).</summary>
    private string ETagFor(ReadResult read) => ResultMapping.ETag(read, weak: _options.Compression);

    /// <summary>If-None-Match uses the weak comparison (RFC 9110 §13.1.2): <c>W/</c> prefixes are ignored on both sides.</summary>
    private static bool IfNoneMatch(HttpRequest request, string etag)
    {
        var opaque = etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag;
        foreach (var value in request.Headers.IfNoneMatch)
        {
            foreach (var candidate in (value ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                if (candidate == opaque || candidate == "*" || (candidate.StartsWith("W/", StringComparison.Ordinal) && candidate[2..] == opaque))
                {
                    return true;
                }
            }
        }
        return false;
    }

    private async Task LongPollAsync(HttpContext context, string name, OffsetQuery offset, string? clientCursor)
    {
        // Holds a live reader slot (taken by ReadAsync) until the response is written.
        ReadResult? read = null;
        try
        {
            var aborted = context.RequestAborted;
            var time = _options.TimeProvider;
            var started = time.GetTimestamp();
            read = await store.ReadAsync(name, new ReadRequest(offset, PieceBytes), aborted);
            while (true)
            {
                if (read.Status != ReadStatus.Ok)
                {
                    await ResultMapping.WriteReadErrorAsync(context.Response, read.Status, read.Info);
                    return;
                }
                if (read.Length > 0)
                {
                    await WriteLiveDataAsync(context, read, cursors.Next(clientCursor));
                    return;
                }
                if (read.Closed)
                {
                    // §5.7: a closed stream at its tail answers at once, without a cursor.
                    WriteNoContent(context.Response, read, cursor: null);
                    return;
                }
                var remaining = _options.LongPollTimeout - time.GetElapsedTime(started);
                var outcome = WaitOutcome.TimedOut;
                if (remaining > TimeSpan.Zero)
                {
                    try
                    {
                        outcome = await store.WaitAsync(name, read.Next, remaining, StoppingToken, aborted);
                    }
                    catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
                    {
                        // The server is stopping: answer as a timeout so the client simply polls again elsewhere.
                        outcome = WaitOutcome.TimedOut;
                    }
                }
                if (outcome == WaitOutcome.TimedOut)
                {
                    WriteNoContent(context.Response, read, cursors.Next(clientCursor));
                    return;
                }
                var next = await store.ReadAsync(name, new ReadRequest(OffsetQuery.At(read.Next), PieceBytes), aborted);
                read.Dispose();
                read = next;
            }
        }
        finally
        {
            // Stores may lend pooled buffers; give them back once the response is written.
            read?.Dispose();
            _liveReaders.Exit(sse: false);
        }
    }

    private static void WriteNoContent(HttpResponse response, ReadResult read, string? cursor)
    {
        response.StatusCode = StatusCodes.Status204NoContent;
        response.Headers.CacheControl = "no-store";
        WriteReadHeaders(response, read, cursor);
    }

    private static void WriteReadHeaders(HttpResponse response, ReadResult read, string? cursor) =>
        WriteReadHeaders(response, read, cursor, read.Next.ToString());

    private static void WriteReadHeaders(HttpResponse response, ReadResult read, string? cursor, string nextOffset)
    {
        var headers = response.Headers;
        headers[ProtocolHeaders.StreamNextOffset] = nextOffset;
        if (read.UpToDate)
        {
            headers[ProtocolHeaders.StreamUpToDate] = "true";
        }
        if (read.Closed)
        {
            headers[ProtocolHeaders.StreamClosed] = "true";
        }
        else if (cursor is not null)
        {
            headers[ProtocolHeaders.StreamCursor] = cursor;
        }
    }

    /// <summary>
    /// A long-poll's 200: every waiter released at this range gets the same delivery from the cache (body, ETag and
    /// <c>Stream-Next-Offset</c> built once), written and flushed once. Only a large non-JSON read goes out as its own
    /// chunks.
    /// </summary>
    private Task WriteLiveDataAsync(HttpContext context, ReadResult read, string cursor)
    {
        var response = context.Response;
        var json = ContentTypes.IsJson(read.Info!.ContentType);
        if (!json && read.Length > LivePayloadCache.MaxPayloadBytes)
        {
            response.Headers.ETag = ETagFor(read);
            WriteCacheHeaders(response);
            return WriteDataAsync(context, read, cursor);
        }
        var payload = _payloads.Get(read, json ? PayloadFormat.JsonArray : PayloadFormat.Raw);
        response.Headers.ETag = payload.ETag;
        WriteCacheHeaders(response);
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = read.Info.ContentType;
        WriteReadHeaders(response, read, cursor, payload.NextOffset);
        response.ContentLength = payload.Body.Length;
        _metrics.Sent(payload.Body.Length);
        return response.Body.WriteAsync(payload.Body, context.RequestAborted).AsTask();
    }

    /// <summary>Writes a 200 with the read's data: raw bytes, or a JSON array for JSON streams.</summary>
    private async Task WriteDataAsync(HttpContext context, ReadResult read, string? cursor)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = read.Info!.ContentType;
        WriteReadHeaders(response, read, cursor);
        if (ContentTypes.IsJson(read.Info.ContentType))
        {
            // Straight into the response pipe: no per-read array (a 1 MiB read would be a large-object allocation).
            var length = JsonFraming.ArrayLength(read.Length);
            response.ContentLength = length;
            _metrics.Sent(length);
            JsonFraming.WriteArray(read.Chunks, response.BodyWriter);
            await response.BodyWriter.FlushAsync(context.RequestAborted);
            return;
        }
        response.ContentLength = read.Length;
        _metrics.Sent(read.Length);
        var writer = response.BodyWriter;
        foreach (var chunk in read.Chunks)
        {
            await writer.WriteAsync(chunk, context.RequestAborted);
        }
    }

    /// <summary>
    /// An SSE response: the data from <paramref name="offset"/> on as data events, each batch followed by its control
    /// event, then live until the reconnect interval ends. One async method, and nothing but the position held while
    /// idle (the last read is given back before the wait): with thousands of idle readers every object a waiting
    /// reader keeps counts (docs/benchmarks.md, "Ten thousand readers").
    /// </summary>
    private async Task SseAsync(HttpContext context, string name, OffsetQuery offset, string? clientCursor)
    {
        var aborted = context.RequestAborted;
        ReadResult? read = null;
        try
        {
            read = await store.ReadAsync(name, new ReadRequest(offset, PieceBytes), aborted);
            if (read.Status != ReadStatus.Ok)
            {
                await ResultMapping.WriteReadErrorAsync(context.Response, read.Status, read.Info);
                return;
            }
            var response = context.Response;
            var contentType = read.Info!.ContentType;
            var text = ContentTypes.IsSseText(contentType);
            var format = ContentTypes.IsJson(contentType) ? PayloadFormat.SseJson : text ? PayloadFormat.SseText : PayloadFormat.SseBase64;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            if (!text)
            {
                response.Headers[ProtocolHeaders.StreamSseDataEncoding] = "base64";
            }
            context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await response.StartAsync(aborted);

            var time = _options.TimeProvider;
            var started = time.GetTimestamp();
            var cursor = cursors.Next(clientCursor);
            var writer = response.BodyWriter;
            var first = true;
            while (true)
            {
                if (read.Length > 0)
                {
                    var payload = _payloads.Get(read, format);
                    if (payload.Body.Length <= LivePayloadCache.MaxPayloadBytes)
                    {
                        // Data and control event as one frame, built once for every reader at this range and cursor.
                        writer.Write(payload.SseFrameFor(read, cursor).Span);
                    }
                    else
                    {
                        writer.Write(payload.Body.Span);
                        SseFrameWriter.WriteControl(new SseControl(read.Next, cursor, read.UpToDate, read.Closed), writer);
                    }
                    _metrics.Sent(read.Length);
                    await writer.FlushAsync(aborted);
                }
                else if (first || read.Closed)
                {
                    SseFrameWriter.WriteControl(new SseControl(read.Next, cursor, UpToDate: true, read.Closed), writer);
                    await writer.FlushAsync(aborted);
                }
                first = false;
                if (read.Closed)
                {
                    return;
                }
                var next = read.Next;
                var upToDate = read.UpToDate;
                // Give the read back before waiting: an idle reader keeps only its position.
                read.Dispose();
                read = null;
                if (upToDate)
                {
                    var remaining = _options.SseReconnectInterval - time.GetElapsedTime(started);
                    if (remaining <= TimeSpan.Zero)
                    {
                        return;
                    }
                    WaitOutcome outcome;
                    try
                    {
                        // The server's stop ends the wait like the client's abort, with no linked token source per reader.
                        outcome = await store.WaitAsync(name, next, remaining, StoppingToken, aborted);
                    }
                    catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
                    {
                        return;
                    }
                    if (outcome != WaitOutcome.Changed)
                    {
                        return;
                    }
                }
                read = await store.ReadAsync(name, new ReadRequest(OffsetQuery.At(next), PieceBytes), aborted);
                if (read.Status != ReadStatus.Ok)
                {
                    return;
                }
            }
        }
        finally
        {
            read?.Dispose();
            _liveReaders.Exit(sse: true);
        }
    }
}
