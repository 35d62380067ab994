using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using DurableStreams.Client.Internal;
using DurableStreams.Protocol;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Client;

/// <summary>
/// A client for one Durable Streams server. Thread-safe. Responses are streamed (<see cref="HttpCompletionOption.ResponseHeadersRead"/>).
/// Idempotent operations (reads, HEAD, create, delete, close, producer appends) are retried by <see cref="DurableStreamClientOptions.Retry"/>;
/// plain appends are not (unless <see cref="DurableStreamClientOptions.RetryAppends"/>), because a lost response would otherwise duplicate data.
/// </summary>
public sealed class DurableStreamClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _baseUrl;
    private readonly ILogger _logger;

    /// <summary>Creates a client with its own <see cref="HttpClient"/>, which it disposes.</summary>
    public DurableStreamClient(DurableStreamClientOptions? options = null)
        : this(new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan }, options, ownsHttpClient: true)
    {
    }

    /// <summary>
    /// Creates a client on <paramref name="httpClient"/>, disposed with the client only when <paramref name="ownsHttpClient"/>
    /// is true. Its <see cref="HttpClient.Timeout"/> applies in addition to <see cref="DurableStreamClientOptions.RequestTimeout"/>.
    /// </summary>
    public DurableStreamClient(HttpClient httpClient, DurableStreamClientOptions? options = null, bool ownsHttpClient = false)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        _http = httpClient;
        OwnsHttpClient = ownsHttpClient;
        Options = options ?? DurableStreamClientOptions.Default;
        if (!Options.BaseUrl.IsAbsoluteUri)
        {
            throw new ArgumentException("BaseUrl must be absolute.", nameof(options));
        }
        ArgumentNullException.ThrowIfNull(Options.Retry, "options.Retry");
        Options.Retry.Validate(nameof(options));
        if (Options.LongPollTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"LongPollTimeout must be above zero; got {Options.LongPollTimeout}.", nameof(options));
        }
        var baseText = Options.BaseUrl.ToString();
        _baseUrl = baseText.EndsWith('/') ? Options.BaseUrl : new Uri(baseText + "/");
        _logger = (Options.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("DurableStreams.Client");
    }

    internal ILogger Logger => _logger;

    public DurableStreamClientOptions Options { get; }

    /// <summary>True when disposing this client disposes its <see cref="HttpClient"/>.</summary>
    public bool OwnsHttpClient { get; }

    /// <summary>
    /// The URL of stream <paramref name="name"/> below <see cref="DurableStreamClientOptions.BaseUrl"/> (each '/'-separated
    /// segment is escaped). A <paramref name="name"/> that is itself an absolute <c>http://</c> or <c>https://</c> URL is the
    /// stream's URL as given, so every operation also takes a full stream URL on any server.
    /// </summary>
    public Uri StreamUrl(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (TryAbsoluteStreamUrl(name) is { } absolute)
        {
            return absolute;
        }
        var segments = name.TrimStart('/').Split('/');
        return new Uri(_baseUrl, string.Join('/', segments.Select(Uri.EscapeDataString)));
    }

    /// <summary>The stream URL <paramref name="name"/> is when it is an absolute http(s) URL without query or fragment; else null.</summary>
    internal static Uri? TryAbsoluteStreamUrl(string name) =>
        (name.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || name.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        && Uri.TryCreate(name, UriKind.Absolute, out var url)
        && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps)
        && string.IsNullOrEmpty(url.Query) && string.IsNullOrEmpty(url.Fragment)
        && url.AbsolutePath.Trim('/').Length > 0
            ? url
            : null;

    /// <summary>Creates a stream (PUT), or confirms that one with the same configuration exists.</summary>
    public async Task<StreamInfo> CreateAsync(string name, CreateStreamOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new CreateStreamOptions();
        var url = StreamUrl(name);
        if (options.Ttl is { } ttl && (ttl < TimeSpan.Zero || ttl.Ticks % TimeSpan.TicksPerSecond != 0))
        {
            throw new ArgumentException("Ttl must be a non-negative whole number of seconds.", nameof(options));
        }
        var bodyStream = options.BodyStream;
        var startPosition = bodyStream is { CanSeek: true } ? bodyStream.Position : 0;
        var retry = bodyStream is null || bodyStream.CanSeek;
        return await ExecuteAsync(
            () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Put, url);
                HttpContent? content = null;
                if (bodyStream is not null)
                {
                    if (bodyStream.CanSeek)
                    {
                        bodyStream.Position = startPosition;
                    }
                    content = new NonDisposingStreamContent(bodyStream);
                }
                else if (!options.Body.IsEmpty || options.ContentType is not null)
                {
                    content = new ReadOnlyMemoryContent(options.Body);
                }
                if (content is not null && options.ContentType is not null)
                {
                    content.Headers.TryAddWithoutValidation("Content-Type", options.ContentType);
                }
                request.Content = content;
                var headers = request.Headers;
                if (options.Ttl is { } t)
                {
                    headers.TryAddWithoutValidation(ProtocolHeaders.StreamTtl, ((long)t.TotalSeconds).ToString(CultureInfo.InvariantCulture));
                }
                if (options.ExpiresAt is { } expiresAt)
                {
                    headers.TryAddWithoutValidation(ProtocolHeaders.StreamExpiresAt, ExpiryRules.Format(expiresAt));
                }
                if (options.Closed)
                {
                    headers.TryAddWithoutValidation(ProtocolHeaders.StreamClosed, "true");
                }
                if (options.ForkFrom is not null)
                {
                    headers.TryAddWithoutValidation(ProtocolHeaders.StreamForkedFrom, StreamUrl(options.ForkFrom).AbsolutePath);
                }
                if (options.ForkOffset is not null)
                {
                    headers.TryAddWithoutValidation(ProtocolHeaders.StreamForkOffset, options.ForkOffset);
                }
                if (options.ForkSubOffset is { } sub)
                {
                    headers.TryAddWithoutValidation(ProtocolHeaders.StreamForkSubOffset, sub.ToString(CultureInfo.InvariantCulture));
                }
                return request;
            },
            retry,
            (response, _) => Task.FromResult(new StreamInfo(
                name,
                response.StatusCode == HttpStatusCode.Created ? CreateOutcome.Created : CreateOutcome.AlreadyExisted,
                RequireNextOffset(response),
                response.Content.Headers.ContentType?.ToString() ?? ResponseHeaders.Get(response, "Content-Type"),
                ResponseHeaders.Flag(response, ProtocolHeaders.StreamClosed))),
            cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Appends bytes (POST). Not retried unless <see cref="DurableStreamClientOptions.RetryAppends"/>: a lost response could otherwise duplicate data; use a producer for that.</summary>
    public Task<AppendResult> AppendAsync(string name, ReadOnlyMemory<byte> body, string contentType, AppendOptions? options = null, CancellationToken cancellationToken = default) =>
        AppendCoreAsync(name, () => new ReadOnlyMemoryContent(body), replayable: true, contentType, options, cancellationToken);

    /// <summary>Appends UTF-8 text (POST). Not retried unless <see cref="DurableStreamClientOptions.RetryAppends"/>.</summary>
    public Task<AppendResult> AppendAsync(string name, string body, string contentType, AppendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return AppendAsync(name, Encoding.UTF8.GetBytes(body), contentType, options, cancellationToken);
    }

    /// <summary>Appends the rest of <paramref name="body"/> as a streamed request body (POST). Never retried; the stream is not disposed.</summary>
    public Task<AppendResult> AppendAsync(string name, Stream body, string contentType, AppendOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return AppendCoreAsync(name, () => new NonDisposingStreamContent(body), replayable: false, contentType, options, cancellationToken);
    }

    /// <summary>Closes the stream without appending (idempotent, so retried).</summary>
    public Task<AppendResult> CloseAsync(string name, CancellationToken cancellationToken = default)
    {
        var url = StreamUrl(name);
        return ExecuteAsync(
            () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Post, url);
                request.Headers.TryAddWithoutValidation(ProtocolHeaders.StreamClosed, "true");
                return request;
            },
            retry: true,
            static (response, _) => Task.FromResult(AppendResultOf(response)),
            cancellationToken);
    }

    /// <summary>Deletes the stream (DELETE). A retried delete whose first attempt succeeded reports <see cref="DurableStreamErrorCode.NotFound"/>.</summary>
    public Task DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var url = StreamUrl(name);
        return ExecuteAsync(() => new HttpRequestMessage(HttpMethod.Delete, url), retry: true, static (_, _) => Task.FromResult(true), cancellationToken);
    }

    /// <summary>Reads the stream's metadata (HEAD).</summary>
    public Task<StreamMetadata> GetMetadataAsync(string name, CancellationToken cancellationToken = default)
    {
        var url = StreamUrl(name);
        return ExecuteAsync(
            () => new HttpRequestMessage(HttpMethod.Head, url),
            retry: true,
            static (response, _) =>
            {
                TimeSpan? ttl = ExpiryRules.TryParseTtl(ResponseHeaders.Get(response, ProtocolHeaders.StreamTtl), out var seconds) ? TimeSpan.FromSeconds(seconds) : null;
                DateTimeOffset? expiresAt = ExpiryRules.TryParseExpiresAt(ResponseHeaders.Get(response, ProtocolHeaders.StreamExpiresAt), out var at) ? at : null;
                return Task.FromResult(new StreamMetadata(
                    response.Content.Headers.ContentType?.ToString() ?? ResponseHeaders.Get(response, "Content-Type"),
                    RequireNextOffset(response),
                    ResponseHeaders.Flag(response, ProtocolHeaders.StreamClosed),
                    ttl,
                    expiresAt));
            },
            cancellationToken);
    }

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

    /// <summary>
    /// A batching producer with exactly-once appends (<c>Producer-Id</c>/<c>Epoch</c>/<c>Seq</c>). Dispose it (or call
    /// <see cref="IdempotentProducer.CloseAsync"/>) to flush.
    /// </summary>
    public IdempotentProducer CreateProducer(string name, string producerId, long epoch = 0, string contentType = ContentTypes.Default, bool autoClaim = true, IdempotentProducerOptions? options = null) =>
        new(this, name, producerId, epoch, contentType, autoClaim, options ?? IdempotentProducerOptions.Default);

    public void Dispose()
    {
        if (OwnsHttpClient)
        {
            _http.Dispose();
        }
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

    private Task<AppendResult> AppendCoreAsync(string name, Func<HttpContent> body, bool replayable, string contentType, AppendOptions? options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(contentType);
        var url = StreamUrl(name);
        return ExecuteAsync(
            () =>
            {
                var content = body();
                content.Headers.TryAddWithoutValidation("Content-Type", contentType);
                var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = content };
                if (options?.StreamSeq is { } seq)
                {
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.StreamSeq, seq);
                }
                if (options?.Close == true)
                {
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.StreamClosed, "true");
                }
                return request;
            },
            retry: replayable && Options.RetryAppends,
            static (response, _) => Task.FromResult(AppendResultOf(response)),
            cancellationToken);
    }

    internal static AppendResult AppendResultOf(HttpResponseMessage response) =>
        new(RequireNextOffset(response), ResponseHeaders.Flag(response, ProtocolHeaders.StreamClosed));

    internal static string RequireNextOffset(HttpResponseMessage response) =>
        ResponseHeaders.Get(response, ProtocolHeaders.StreamNextOffset)
        ?? throw new DurableStreamException(DurableStreamErrorCode.Unknown, response.StatusCode, "The response lacks Stream-Next-Offset.");

    /// <summary>
    /// Sends one request (built afresh per attempt) and hands a successful response to <paramref name="onSuccess"/>
    /// under the request timeout (<paramref name="timeout"/> when given). With <paramref name="retry"/>, network errors,
    /// timeouts, 429 and 5xx are retried after <see cref="RetryPolicy"/>'s delays while <paramref name="budget"/> (by
    /// default <see cref="RetryPolicy.MaxRetries"/> retries for this call) allows; the last failure is thrown.
    /// </summary>
    internal async Task<T> ExecuteAsync<T>(
        Func<HttpRequestMessage> build,
        bool retry,
        Func<HttpResponseMessage, CancellationToken, Task<T>> onSuccess,
        CancellationToken cancellationToken,
        bool keepResponse = false,
        RetryBudget? budget = null,
        TimeSpan? timeout = null)
    {
        budget ??= new RetryBudget(retry ? Math.Max(0, Options.Retry.MaxRetries) : 0, null, Options.TimeProvider);
        var requestTimeout = timeout ?? Options.RequestTimeout;
        while (true)
        {
            TimeSpan? retryAfter = null;
            DurableStreamException failure;
            using (var timeoutSource = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeoutSource.CancelAfter(requestTimeout);
                HttpResponseMessage? response = null;
                try
                {
                    using var request = build();
                    response = await SendAsync(request, timeoutSource.Token).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                    {
                        var result = await onSuccess(response, timeoutSource.Token).ConfigureAwait(false);
                        if (keepResponse)
                        {
                            response = null;
                        }
                        return result;
                    }
                    failure = await ResponseHeaders.ErrorAsync(response, timeoutSource.Token).ConfigureAwait(false);
                    if (!retry || !ResponseHeaders.IsRetryable(response.StatusCode))
                    {
                        throw failure;
                    }
                    retryAfter = ResponseHeaders.RetryAfter(response, Options.TimeProvider);
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    failure = new DurableStreamException(DurableStreamErrorCode.Unavailable, null, $"No answer within {requestTimeout}.", ex);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException)
                {
                    failure = new DurableStreamException(DurableStreamErrorCode.Unavailable, null, ex.Message, ex);
                }
                finally
                {
                    response?.Dispose();
                }
            }
            if (!retry || !budget.TryRetry(out var attempt, out var longestDelay))
            {
                throw failure;
            }
            await DelayBeforeRetryAsync(attempt, retryAfter, longestDelay, failure.Message, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The one back-off wait before retry <paramref name="attempt"/>: <see cref="RetryPolicy"/>'s delay (or the server's wish), within the budget.</summary>
    private async Task DelayBeforeRetryAsync(int attempt, TimeSpan? retryAfter, TimeSpan longestDelay, string reason, CancellationToken cancellationToken)
    {
        var delay = Options.Retry.DelayFor(attempt, retryAfter);
        if (delay > longestDelay)
        {
            delay = longestDelay;
        }
        ClientLog.Retrying(_logger, (long)delay.TotalMilliseconds, attempt, reason);
        if (delay > TimeSpan.Zero)
        {
            await Task.Delay(delay, Options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>One attempt with the configured headers; never throws for an HTTP status.</summary>
    internal async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (Options.Authorization is { } authorization)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }
        foreach (var (header, value) in Options.Headers)
        {
            request.Headers.TryAddWithoutValidation(header, value);
        }
        foreach (var (header, provider) in Options.HeaderProviders)
        {
            var value = await provider(cancellationToken).ConfigureAwait(false);
            request.Headers.Remove(header);
            request.Headers.TryAddWithoutValidation(header, value);
        }
        if (Options.QueryParameterProviders.Count > 0 && request.RequestUri is { } uri)
        {
            var url = new StringBuilder(uri.ToString());
            // Provided values are often credentials (signed-URL tokens): error messages show the URL with them redacted.
            var shown = new StringBuilder(uri.ToString());
            var separator = string.IsNullOrEmpty(uri.Query) ? '?' : '&';
            foreach (var (parameter, provider) in Options.QueryParameterProviders)
            {
                var value = await provider(cancellationToken).ConfigureAwait(false);
                url.Append(separator).Append(Uri.EscapeDataString(parameter)).Append('=').Append(Uri.EscapeDataString(value));
                shown.Append(separator).Append(Uri.EscapeDataString(parameter)).Append("=***");
                separator = '&';
            }
            request.RequestUri = new Uri(url.ToString());
            request.Options.Set(ResponseHeaders.DisplayUrl, shown.ToString());
        }
        if (!_logger.IsEnabled(LogLevel.Debug))
        {
            return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        ClientLog.RequestStarting(_logger, request.Method, request.RequestUri);
        var started = Options.TimeProvider.GetTimestamp();
        try
        {
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var elapsed = ElapsedMilliseconds(started);
            ClientLog.ResponseReceived(_logger, (int)response.StatusCode, response.ReasonPhrase, request.Method, request.RequestUri, elapsed);
            return response;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            var elapsed = ElapsedMilliseconds(started);
            ClientLog.RequestFailed(_logger, request.Method, request.RequestUri, elapsed, ex.Message);
            throw;
        }
    }

    private long ElapsedMilliseconds(long started) => (long)Options.TimeProvider.GetElapsedTime(started).TotalMilliseconds;

    /// <summary>Stream content that leaves the caller's stream open.</summary>
    private sealed class NonDisposingStreamContent(Stream stream) : StreamContent(new NonDisposingStream(stream));

    private sealed class NonDisposingStream(Stream inner) : Stream
    {
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
