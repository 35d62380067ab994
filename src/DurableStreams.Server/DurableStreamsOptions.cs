using DurableStreams.Protocol;
using DurableStreams.Subscriptions;

namespace DurableStreams.Server;

/// <summary>Settings of the HTTP endpoints. Defaults follow PROTOCOL.md and the reference servers.</summary>
public class DurableStreamsOptions
{
    /// <summary>How long a long-poll waits for data before answering 204; default 30 s.</summary>
    public TimeSpan LongPollTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an SSE response stays open before the server closes it for CDN collapsing (§10.2); default 60 s.</summary>
    public TimeSpan SseReconnectInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Largest accepted request body; larger ones get 413. Default 64 MiB.</summary>
    public long MaxAppendBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// Most bytes of request bodies held in memory at once, across all requests (bodies are buffered whole before
    /// they are stored). A request that would go over it gets 503 with <c>Retry-After</c> before its body is read:
    /// reserved by <c>Content-Length</c> up front, or as a chunked body grows. Default 256 MiB: four bodies of the
    /// default <see cref="MaxAppendBytes"/> at once, a fixed bound on what uploads can pin whatever their number.
    /// Must be at least <see cref="MaxAppendBytes"/>.
    /// </summary>
    public long MaxBufferedBodyBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// Slowest accepted request body, in bytes per second, measured over each 5 s window of the upload (the first
    /// window is the grace period): a body that delivers less than rate × 5 s in any window is cut off with 408 and
    /// the connection closed, however much it sent before. Default 240 B/s, Kestrel's own rate. 0 turns the check off.
    /// </summary>
    public double MinRequestBodyDataRate { get; set; } = 240;

    /// <summary>
    /// Most bytes of stream data in one catch-up response. Null (the default) means no cap: a catch-up response runs
    /// to the tail the first read saw, read and sent in pieces of at most 1 MiB, so memory per reader stays at one
    /// piece. A cap makes long streams take several responses, each a separate cacheable URL (useful behind a CDN);
    /// clients that read only one response in catch-up mode (the TypeScript client's <c>live: false</c>) then get
    /// only the first piece. With a cap, a JSON catch-up response holds at most one piece (of at most the cap and
    /// 1 MiB). Long-poll responses and SSE data events hold at most one piece either way.
    /// </summary>
    public int? MaxReadChunkBytes { get; set; }

    /// <summary>
    /// Longest stream name, in UTF-8 bytes; longer names get 400. Default 4096: long enough for any real name, and an
    /// ASCII name of that length still fits Kestrel's 8 KiB request line, so this limit and not Kestrel answers.
    /// </summary>
    public int MaxStreamNameBytes { get; set; } = 4096;

    /// <summary>Most '/'-separated segments in a stream name; more get 400. Default 64.</summary>
    public int MaxStreamNameSegments { get; set; } = 64;

    /// <summary>
    /// Most live readers (long-poll and SSE requests in progress) at once; one more gets 503 with <c>Retry-After</c>.
    /// Null (the default) means no cap.
    /// </summary>
    public int? MaxLiveReaders { get; set; }

    /// <summary>
    /// Bearer tokens that may read (GET, HEAD). When this or <see cref="WriteTokens"/> holds a token, every stream
    /// request needs one: none gets 401 with <c>WWW-Authenticate: Bearer</c>, a read token on a write gets 403. CORS
    /// preflight (OPTIONS) never needs one. Empty (the default) means no authentication.
    /// </summary>
    public IList<string> ReadTokens { get; } = new List<string>();

    /// <summary>Bearer tokens that may read and write (PUT, POST, DELETE as well as GET and HEAD).</summary>
    public IList<string> WriteTokens { get; } = new List<string>();

    /// <summary>
    /// Bearer tokens with the admin scope: everything a write token may do, plus the admin routes (on-demand compaction,
    /// <c>POST __ds/compact/{stream}</c>). With tokens configured but none of these, the admin routes answer 403; with no
    /// token configured at all the server is open, admin routes included. Empty by default.
    /// </summary>
    public IList<string> AdminTokens { get; } = new List<string>();

    /// <summary>
    /// The retention and compaction policies (issue 18); the compact route compacts with the stream's
    /// <see cref="DurableStreams.Core.Retention.RetentionPolicy.Compaction"/> or, without one,
    /// <see cref="DurableStreams.Core.Compaction.CompactionPolicy.State"/>. Default none.
    /// </summary>
    public DurableStreams.Core.Retention.RetentionPolicies Retention { get; set; } = DurableStreams.Core.Retention.RetentionPolicies.None;

    /// <summary>Allowed CORS origins; <c>*</c> (the default) allows any.</summary>
    public IList<string> CorsOrigins { get; } = new List<string> { "*" };

    /// <summary>Cursor interval and epoch (§10.1).</summary>
    public CursorOptions CursorOptions { get; set; } = new();

    /// <summary>
    /// Who may cache catch-up and long-poll data responses (§10.1). <see cref="CachePolicy.Auto"/> (the default) is
    /// <see cref="CachePolicy.Private"/> when reads need a token (any <see cref="ReadTokens"/> or <see cref="WriteTokens"/>
    /// configured) and <see cref="CachePolicy.Public"/> otherwise. Private answers
    /// <c>Cache-Control: private, max-age=60, stale-while-revalidate=300</c> with <c>Vary: Authorization</c>, so a shared
    /// cache never serves one caller's authorised read to another; public answers the same with <c>public</c>. Choose
    /// public with tokens only behind a cache (CDN) that authorises every request itself before answering from cache.
    /// </summary>
    public CachePolicy CachePolicy { get; set; } = CachePolicy.Auto;

    /// <summary>
    /// Compresses catch-up reads with brotli or gzip when the request's <c>Accept-Encoding</c> allows (never SSE or
    /// long-poll responses), with <c>Vary: Accept-Encoding</c>. Catch-up and long-poll ETags then become weak
    /// (<c>W/"…"</c>): the compressed and identity bodies are the same data, so a weak validator is true for both and
    /// <c>If-None-Match</c> (which compares weakly) still answers 304. Default false.
    /// </summary>
    public bool Compression { get; set; }

    /// <summary>Lifecycle hooks called after streams are created or deleted; none by default.</summary>
    public IList<IStreamLifecycleHooks> Hooks { get; } = new List<IStreamLifecycleHooks>();

    /// <summary>
    /// Serve the subscription APIs under <c>{streams}/__ds/</c> (§6–7): webhook and pull-wake delivery. Off by default
    /// for embedders because it makes outbound HTTP calls; <c>durable-streams serve</c> turns it on.
    /// </summary>
    public bool EnableSubscriptions { get; set; }

    /// <summary>Subscription state and webhook delivery settings (used when <see cref="EnableSubscriptions"/> is set).</summary>
    public SubscriptionOptions Subscriptions { get; set; } = new();

    /// <summary>Clock for cursors and live-wait deadlines.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Producer retention of the in-memory store created when no store is given (an idle producer's state is forgotten
    /// after it); default 7 days (<see cref="DurableStreams.Core.ProducerRules.DefaultMemoryRetention"/>). A store
    /// passed in has its own option.
    /// </summary>
    public TimeSpan MemoryProducerRetention { get; set; } = DurableStreams.Core.ProducerRules.DefaultMemoryRetention;

    /// <summary>Throws when a setting is out of range; called at start-up.</summary>
    public virtual void Validate()
    {
        if (LongPollTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(LongPollTimeout), LongPollTimeout, "Long-poll timeout must be positive.");
        }
        if (SseReconnectInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(SseReconnectInterval), SseReconnectInterval, "SSE reconnect interval must be positive.");
        }
        if (MaxAppendBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxAppendBytes), MaxAppendBytes, "Maximum append size must be positive.");
        }
        if (MaxBufferedBodyBytes < MaxAppendBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBufferedBodyBytes), MaxBufferedBodyBytes, "The buffered body budget must be at least the maximum append size.");
        }
        if (MinRequestBodyDataRate < 0 || double.IsNaN(MinRequestBodyDataRate))
        {
            throw new ArgumentOutOfRangeException(nameof(MinRequestBodyDataRate), MinRequestBodyDataRate, "Minimum request body data rate must not be negative.");
        }
        if (MaxReadChunkBytes is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxReadChunkBytes), MaxReadChunkBytes, "Maximum read chunk size must be positive.");
        }
        if (MaxStreamNameBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxStreamNameBytes), MaxStreamNameBytes, "Maximum stream name length must be positive.");
        }
        if (MaxStreamNameSegments <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxStreamNameSegments), MaxStreamNameSegments, "Maximum stream name segment count must be positive.");
        }
        if (MaxLiveReaders is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxLiveReaders), MaxLiveReaders, "Maximum live readers must be positive.");
        }
        if (CursorOptions.Interval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CursorOptions), CursorOptions.Interval, "Cursor interval must be positive.");
        }
        if (!Enum.IsDefined(CachePolicy))
        {
            throw new ArgumentOutOfRangeException(nameof(CachePolicy), CachePolicy, "Cache policy must be Auto, Private or Public.");
        }
        Subscriptions.Validate();
        if (CorsOrigins.Count == 0)
        {
            throw new ArgumentException("At least one CORS origin (or '*') is required.", nameof(CorsOrigins));
        }
    }
}

/// <summary>Settings of the embeddable <see cref="DurableStreamServer"/>.</summary>
public sealed class DurableStreamServerOptions : DurableStreamsOptions
{
    /// <summary>The protocol's port (§13.1).</summary>
    public const int DefaultPort = 4437;

    /// <summary>TCP port; 0 picks any free port. Default 4437.</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>Address to listen on; default 127.0.0.1 so nothing is exposed by accident.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The store; null means a new in-memory store owned by the server.</summary>
    public DurableStreams.Core.IStreamStore? Store { get; set; }

    /// <summary>Where streams are mounted; default <c>/v1/stream</c>, the path the reference and the suite use.</summary>
    public string StreamsPath { get; set; } = "/v1/stream";

    /// <summary>
    /// How long a client may take to send the request line and headers before Kestrel closes the connection (slowloris
    /// defence). Default 30 s, Kestrel's own default.
    /// </summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Requests each client IP address may make per <see cref="RateLimitWindow"/>; one more gets 429 with
    /// <c>Retry-After</c>. Null (the default) means no rate limit. <c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c> are exempt.
    /// </summary>
    public int? RateLimitPermits { get; set; }

    /// <summary>The fixed window of <see cref="RateLimitPermits"/>; default 1 s.</summary>
    public TimeSpan RateLimitWindow { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Serves in Prometheus text format at <c>/metrics</c> the <c>DurableStreams.*</c> meters and the built-in meters
    /// <c>Microsoft.AspNetCore.Hosting</c>, <c>Microsoft.AspNetCore.Server.Kestrel</c> and <c>System.Runtime</c>. Default false.
    /// </summary>
    public bool Metrics { get; set; }

    /// <summary>
    /// The OpenTelemetry resource <c>service.name</c> of the <see cref="Metrics"/> scrape (its <c>target_info</c>
    /// <c>service_name</c> label). Default <c>durable-streams</c>.
    /// </summary>
    public string MetricsServiceName { get; set; } = "durable-streams";

    /// <summary>PEM certificate (chain) file for HTTPS; with <see cref="TlsKeyPath"/> the server speaks only HTTPS, HTTP/1.1 and HTTP/2 (ALPN).</summary>
    public string? TlsCertificatePath { get; set; }

    /// <summary>PEM private key file matching <see cref="TlsCertificatePath"/>.</summary>
    public string? TlsKeyPath { get; set; }

    /// <summary>
    /// Makes the plain-HTTP endpoint speak HTTP/2 only, with prior knowledge (h2c), instead of HTTP/1.1 only. Kestrel
    /// can offer both versions on one port only by ALPN, that is over TLS (<see cref="TlsCertificatePath"/>, where HTTP/2
    /// is always offered), so this cannot be combined with TLS. Default false.
    /// </summary>
    public bool CleartextHttp2 { get; set; }

    /// <summary>
    /// Most concurrent requests (streams) one HTTP/2 connection may have open (h2c or TLS); one more is refused with
    /// REFUSED_STREAM until another ends. Every live SSE or long-poll read holds one for its whole life, so a browser
    /// tailing many streams over one connection needs more than Kestrel's default of 100. Default 1000, from 1 to 100,000.
    /// </summary>
    public int MaxHttp2StreamsPerConnection { get; set; } = DefaultMaxHttp2StreamsPerConnection;

    /// <summary>The default of <see cref="MaxHttp2StreamsPerConnection"/>.</summary>
    public const int DefaultMaxHttp2StreamsPerConnection = 1000;

    /// <summary>
    /// Keeps the stream registry: a JSON stream <see cref="StreamRegistryHooks.RegistryStreamName"/> of change events for
    /// every creation and deletion, which <c>durable-streams ls</c> reads. Default false (no extra write per create/delete).
    /// </summary>
    public bool Registry { get; set; }

    /// <summary>
    /// Serves the stream inspector page at <c>/</c> (see <see cref="DurableStreamsInspectorExtensions.MapDurableStreamsInspector"/>).
    /// Default false here; <c>durable-streams serve</c> and <c>Start-DurableStreamServer</c> turn it on unless <c>--no-ui</c>/<c>-NoUi</c>.
    /// </summary>
    public bool Inspector { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Port is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(Port), Port, "Port must be between 0 and 65535.");
        }
        if (string.IsNullOrWhiteSpace(Host))
        {
            throw new ArgumentException("Host must not be empty.", nameof(Host));
        }
        if (Metrics && string.IsNullOrWhiteSpace(MetricsServiceName))
        {
            throw new ArgumentException("The metrics service name must not be empty.", nameof(MetricsServiceName));
        }
        if (RequestHeadersTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RequestHeadersTimeout), RequestHeadersTimeout, "Request headers timeout must be positive.");
        }
        if (RateLimitPermits is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(RateLimitPermits), RateLimitPermits, "Rate limit must be positive.");
        }
        if (RateLimitWindow <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(RateLimitWindow), RateLimitWindow, "Rate limit window must be positive.");
        }
        if ((TlsCertificatePath is null) != (TlsKeyPath is null))
        {
            throw new ArgumentException("HTTPS needs both a certificate and a key file.", TlsCertificatePath is null ? nameof(TlsCertificatePath) : nameof(TlsKeyPath));
        }
        if (CleartextHttp2 && TlsCertificatePath is not null)
        {
            throw new ArgumentException("Cleartext HTTP/2 (h2c) cannot be combined with HTTPS: over TLS, HTTP/2 is already offered through ALPN.", nameof(CleartextHttp2));
        }
        if (MaxHttp2StreamsPerConnection is < 1 or > 100_000)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxHttp2StreamsPerConnection), MaxHttp2StreamsPerConnection, "Most HTTP/2 streams per connection must be from 1 to 100000.");
        }
        if (string.IsNullOrWhiteSpace(StreamsPath) || !StreamsPath.StartsWith('/'))
        {
            throw new ArgumentException("StreamsPath must start with '/'.", nameof(StreamsPath));
        }
    }
}

/// <summary>Who may cache stream data responses: see <see cref="DurableStreamsOptions.CachePolicy"/>.</summary>
public enum CachePolicy
{
    /// <summary><see cref="Private"/> when reads need a token, <see cref="Public"/> otherwise.</summary>
    Auto,

    /// <summary><c>Cache-Control: private</c> and <c>Vary: Authorization</c>: only the caller's own cache may store it.</summary>
    Private,

    /// <summary><c>Cache-Control: public</c>: shared caches and CDNs may store it and serve it to anyone.</summary>
    Public,
}
