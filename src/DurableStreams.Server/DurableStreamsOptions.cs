using DurableStreams.Protocol;

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

    /// <summary>Most bytes of stream data in one catch-up response or SSE data event; default 1 MiB.</summary>
    public int MaxReadChunkBytes { get; set; } = 1024 * 1024;

    /// <summary>Allowed CORS origins; <c>*</c> (the default) allows any.</summary>
    public IList<string> CorsOrigins { get; } = new List<string> { "*" };

    /// <summary>Cursor interval and epoch (§10.1).</summary>
    public CursorOptions CursorOptions { get; set; } = new();

    /// <summary>
    /// Catch-up responses are cacheable by shared caches (<c>public</c>) unless this is set, which makes them
    /// <c>private</c> for streams holding user-specific data (§10.1). Default false.
    /// </summary>
    public bool PrivateCaching { get; set; }

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
        if (MaxReadChunkBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxReadChunkBytes), MaxReadChunkBytes, "Maximum read chunk size must be positive.");
        }
        if (CursorOptions.Interval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CursorOptions), CursorOptions.Interval, "Cursor interval must be positive.");
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
    public DurableStreams.Storage.IStreamStore? Store { get; set; }

    /// <summary>Where streams are mounted; default <c>/v1/stream</c>, the path the reference and the suite use.</summary>
    public string StreamsPath { get; set; } = "/v1/stream";

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
        if (string.IsNullOrWhiteSpace(StreamsPath) || !StreamsPath.StartsWith('/'))
        {
            throw new ArgumentException("StreamsPath must start with '/'.", nameof(StreamsPath));
        }
    }
}
