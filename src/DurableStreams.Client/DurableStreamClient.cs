using System.Text.Json;
using System.Globalization;
using System.Net;
using System.Text;
using DurableStreams.Client.Internal;
using DurableStreams.Protocol;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Client;

/// <summary>
/// A client for one Durable Streams server. Thread-safe. Responses are streamed (<see cref="HttpCompletionOption.ResponseHeadersRead"/>).
/// Idempotent operations (reads, HEAD, create, delete, close, producer appends) are retried by <see cref="DurableStreamClientOptions.Retry"/>;
/// plain appends are not (unless <see cref="DurableStreamClientOptions.RetryAppends"/>), because a lost response would otherwise duplicate data.
/// </summary>
public sealed partial class DurableStreamClient : IDisposable
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

    /// <summary>The options the client was created with (<see cref="DurableStreamClientOptions.Default"/> when none were given).</summary>
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
                    expiresAt)
                {
                    RetainedStart = ResponseHeaders.Get(response, ProtocolHeaders.StreamRetainedStart),
                });
            },
            cancellationToken);
    }

    /// <summary>
    /// Compacts a State-Protocol stream now (<c>POST {mount}/__ds/compact/{stream}</c>; needs an admin token when the
    /// server has tokens). Fails with <see cref="DurableStreamErrorCode.NotFound"/> for an unknown stream,
    /// <see cref="DurableStreamErrorCode.Conflict"/> when compaction does not apply (not JSON, or a fork),
    /// <see cref="DurableStreamErrorCode.Forbidden"/> without the admin scope, and
    /// <see cref="DurableStreamErrorCode.Unavailable"/> when the server's store cannot compact.
    /// </summary>
    /// <param name="name">A stream name relative to the client's base URL, or an absolute URL under it.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    public Task<CompactionReport> CompactAsync(string name, CancellationToken cancellationToken = default)
    {
        var url = CompactUrl(name);
        // Safe to repeat: a second compaction with nothing appended since answers notDue.
        return ExecuteAsync(() => new HttpRequestMessage(HttpMethod.Post, url), retry: true, static async (response, ct) =>
        {
            var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            try
            {
                using var document = JsonDocument.Parse(body);
                var root = document.RootElement;
                return new CompactionReport(
                    root.GetProperty("outcome").GetString() ?? "",
                    root.GetProperty("bytesBefore").GetInt64(),
                    root.GetProperty("bytesAfter").GetInt64(),
                    root.GetProperty("messagesBefore").GetInt64(),
                    root.GetProperty("liveKeys").GetInt32(),
                    root.GetProperty("unknownMessages").GetInt32(),
                    root.GetProperty("partial").GetBoolean(),
                    root.TryGetProperty("retainedStart", out var start) ? start.GetString() : null,
                    root.TryGetProperty("offsetGeneration", out var generation) ? generation.GetInt64() : 0,
                    root.TryGetProperty("compactedEnd", out var end) ? end.GetString() : null);
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                throw new DurableStreamException(DurableStreamErrorCode.ParseError, response.StatusCode, "The server's compaction report is not the expected JSON.", ex);
            }
        }, cancellationToken);
    }

    /// <summary>The compact route of <paramref name="name"/>: <c>{base}__ds/compact/{name}</c>.</summary>
    internal Uri CompactUrl(string name)
    {
        var stream = StreamUrl(name);
        var relative = _baseUrl.MakeRelativeUri(stream).OriginalString;
        if (relative.Length == 0 || relative.StartsWith("..", StringComparison.Ordinal) || Uri.TryCreate(relative, UriKind.Absolute, out _))
        {
            throw new ArgumentException($"'{name}' is not a stream under the client's base URL {_baseUrl}; compaction is requested from the server that holds the stream.", nameof(name));
        }
        return new Uri(_baseUrl, "__ds/compact/" + relative);
    }

    /// <summary>
    /// A batching producer with exactly-once appends (<c>Producer-Id</c>/<c>Epoch</c>/<c>Seq</c>). Dispose it (or call
    /// <see cref="IdempotentProducer.CloseAsync"/>) to flush.
    /// </summary>
    public IdempotentProducer CreateProducer(string name, string producerId, long epoch = 0, string contentType = ContentTypes.Default, bool autoClaim = true, IdempotentProducerOptions? options = null) =>
        new(this, name, producerId, epoch, contentType, autoClaim, options ?? IdempotentProducerOptions.Default);

    /// <summary>Disposes the <see cref="HttpClient"/> when the client owns it (<see cref="OwnsHttpClient"/>); otherwise does nothing.</summary>
    public void Dispose()
    {
        if (OwnsHttpClient)
        {
            _http.Dispose();
        }
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
        try
        {
            return await SendLoggedAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.ResponseEnded && request.RequestUri is { Scheme: "http" })
        {
            // Plain HTTP to an HTTPS-only port ends like this: say so instead of .NET's "error occurred while sending".
            if (await TlsProbe.IsHttpsPortAsync(request.RequestUri, ex, cancellationToken).ConfigureAwait(false))
            {
                throw new HttpRequestException(HttpRequestError.SecureConnectionError, TlsProbe.Message(request.RequestUri), ex);
            }
            throw;
        }
    }

    private async Task<HttpResponseMessage> SendLoggedAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
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
