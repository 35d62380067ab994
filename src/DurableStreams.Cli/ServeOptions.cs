using DurableStreams.Server;
using DurableStreams.Core;
using DurableStreams.Storage.Files;
using DurableStreams.Core.Memory;
using DurableStreams.Storage.Postgres;
using DurableStreams.Core.Subscriptions;

namespace DurableStreams.Cli;

/// <summary>The storage back end chosen on the <c>serve</c> command line.</summary>
internal enum ServeStore
{
    /// <summary>The durable file store in <see cref="ServeOptions.DataDirectory"/>. The default.</summary>
    File,

    /// <summary>In-memory store (<c>--memory</c>); everything is lost when the server stops.</summary>
    Memory,

    /// <summary>PostgreSQL store (<c>--postgres</c> or <c>DS_POSTGRES</c>); any number of servers may share the database.</summary>
    Postgres,
}

/// <summary>
/// Settings read from the <c>serve</c> command line, kept apart from the engine's
/// <see cref="DurableStreamServerOptions"/> and <see cref="FileStreamStoreOptions"/> so parsing can be tested without
/// starting a server.
/// </summary>
internal sealed record ServeOptions
{
    /// <summary>
    /// The data directory used when <c>--data-dir</c> is not given: <c>durable-streams</c> under the user's local
    /// application data folder (<c>~/.local/share</c> on Linux, <c>%LOCALAPPDATA%</c> on Windows,
    /// <c>~/Library/Application Support</c> on macOS), so a plain <c>serve</c> keeps its streams across restarts
    /// without writing into the current directory. Null when the platform reports no such folder.
    /// </summary>
    public static string? DefaultDataDirectory { get; } = GetDefaultDataDirectory();

    public required string Host { get; init; }

    public required int Port { get; init; }

    public required ServeStore Store { get; init; }

    /// <summary>Full path of the file store's data directory; null for the memory store.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>Npgsql connection string of the PostgreSQL store; only for <see cref="ServeStore.Postgres"/>.</summary>
    public string? PostgresConnectionString { get; init; }

    /// <summary>When the file store acknowledges appends relative to the disk.</summary>
    public DurabilityMode Durability { get; init; } = DurabilityMode.Always;

    /// <summary>Sync period of <see cref="DurabilityMode.Interval"/>.</summary>
    public TimeSpan SyncInterval { get; init; } = new FileStreamStoreOptions { DataDirectory = "." }.SyncInterval;

    /// <summary>
    /// How long idle producer state is kept (<c>--producer-retention</c>); null keeps each store's default (file and
    /// PostgreSQL 30 days, memory 7 days).
    /// </summary>
    public TimeSpan? ProducerRetention { get; init; }

    public required TimeSpan LongPollTimeout { get; init; }

    public required TimeSpan SseReconnectInterval { get; init; }

    public required IReadOnlyList<string> CorsOrigins { get; init; }

    public required long MaxAppendBytes { get; init; }

    /// <summary>Most bytes in one catch-up response; null (<c>--max-read-chunk-bytes 0</c>, the default) means no cap.</summary>
    public int? MaxReadChunkBytes { get; init; }

    /// <summary>Serve the subscription APIs (§6–7); on unless <c>--no-subscriptions</c>.</summary>
    public bool Subscriptions { get; init; } = true;

    /// <summary>Whether webhooks may target <c>http://localhost</c> and <c>127.0.0.x</c> (<c>--allow-local-webhooks</c>); off by default.</summary>
    public bool AllowLocalWebhooks { get; init; }

    /// <summary>Whether the server keeps the stream registry (<c>--registry</c>).</summary>
    public bool Registry { get; init; }

    /// <summary>Whether the stream inspector page is served at <c>/</c>; on unless <c>--no-ui</c>.</summary>
    public bool Inspector { get; init; } = true;

    /// <summary>Whether <c>/metrics</c> is served.</summary>
    public bool Metrics { get; init; }

    /// <summary>Whether catch-up reads are compressed (<c>--compression</c>).</summary>
    public bool Compression { get; init; }

    /// <summary>Who may cache stream data responses (<c>--cache-control</c>); auto by default.</summary>
    public CachePolicy CachePolicy { get; init; } = CachePolicy.Auto;

    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Warning;

    /// <summary><c>text</c> or <c>json</c>.</summary>
    public string LogFormat { get; init; } = "text";

    public int? MaxLiveReaders { get; init; }

    public int? RateLimitPermits { get; init; }

    public TimeSpan RateLimitWindow { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public double MinRequestBodyDataRate { get; init; } = 240;

    /// <summary>Most bytes of request bodies buffered at once (<c>--max-buffered-body-bytes</c>).</summary>
    public long MaxBufferedBodyBytes { get; init; } = 256L * 1024 * 1024;

    public int MaxStreamNameBytes { get; init; } = 4096;

    public int MaxStreamNameSegments { get; init; } = 64;

    /// <summary>Most forks deep a fork chain may grow (<c>--max-fork-depth</c>); passed to every store.</summary>
    public int MaxForkDepth { get; init; } = ForkRules.DefaultMaxForkDepth;

    /// <summary>Most JSON messages per append or create body (<c>--max-messages-per-append</c>); passed to every store.</summary>
    public int MaxMessagesPerAppend { get; init; } = AppendRules.DefaultMaxMessagesPerAppend;

    public string? TlsCertificatePath { get; init; }

    public string? TlsKeyPath { get; init; }

    /// <summary>Bearer tokens with the read scope (from DS_READ_TOKENS or the config file's readTokens; never the command line).</summary>
    public IReadOnlyList<string> ReadTokens { get; init; } = [];

    /// <summary>Bearer tokens with the write scope (from DS_WRITE_TOKENS or the config file's writeTokens).</summary>
    public IReadOnlyList<string> WriteTokens { get; init; } = [];

    /// <summary>Creates the file store settings; only for <see cref="ServeStore.File"/>.</summary>
    public FileStreamStoreOptions ToFileStoreOptions() => new()
    {
        DataDirectory = DataDirectory ?? throw new InvalidOperationException("The memory store has no data directory."),
        Durability = Durability,
        SyncInterval = SyncInterval,
        MaxForkDepth = MaxForkDepth,
        MaxMessagesPerAppend = MaxMessagesPerAppend,
        ProducerRetention = ProducerRetention ?? ProducerRules.DefaultPersistentRetention,
    };

    /// <summary>Creates the memory store settings; only for <see cref="ServeStore.Memory"/>.</summary>
    public MemoryStreamStoreOptions ToMemoryStoreOptions() => new()
    {
        MaxForkDepth = MaxForkDepth,
        MaxMessagesPerAppend = MaxMessagesPerAppend,
        ProducerRetention = ProducerRetention ?? ProducerRules.DefaultMemoryRetention,
    };

    /// <summary>Creates the PostgreSQL store settings; only for <see cref="ServeStore.Postgres"/>.</summary>
    public PostgresStreamStoreOptions ToPostgresStoreOptions() => new()
    {
        ConnectionString = PostgresConnectionString ?? throw new InvalidOperationException("No PostgreSQL connection string was given."),
        MaxForkDepth = MaxForkDepth,
        MaxMessagesPerAppend = MaxMessagesPerAppend,
        ProducerRetention = ProducerRetention ?? ProducerRules.DefaultPersistentRetention,
    };

    /// <summary>
    /// Creates the engine options. A null <paramref name="store"/> selects the in-memory store, which the server then owns;
    /// a store passed in stays the caller's to dispose, and so does <paramref name="subscriptionState"/> (null keeps
    /// subscription state in memory). A <paramref name="subscriptionRepository"/> (the PostgreSQL store's, shared by all
    /// nodes) takes the place of <paramref name="subscriptionState"/>.
    /// </summary>
    public DurableStreamServerOptions ToServerOptions(
        IStreamStore? store = null, ISubscriptionStateStore? subscriptionState = null, ISubscriptionRepository? subscriptionRepository = null)
    {
        var options = new DurableStreamServerOptions
        {
            Host = Host,
            Port = Port,
            Store = store,
            LongPollTimeout = LongPollTimeout,
            SseReconnectInterval = SseReconnectInterval,
            MaxAppendBytes = MaxAppendBytes,
            MaxBufferedBodyBytes = MaxBufferedBodyBytes,
            MaxReadChunkBytes = MaxReadChunkBytes,
            EnableSubscriptions = Subscriptions,
            Subscriptions = { State = subscriptionState, Repository = subscriptionRepository, AllowLocalhostHttp = AllowLocalWebhooks },
            Registry = Registry,
            Inspector = Inspector,
            Metrics = Metrics,
            Compression = Compression,
            CachePolicy = CachePolicy,
            MaxLiveReaders = MaxLiveReaders,
            RateLimitPermits = RateLimitPermits,
            RateLimitWindow = RateLimitWindow,
            RequestHeadersTimeout = RequestHeadersTimeout,
            MinRequestBodyDataRate = MinRequestBodyDataRate,
            MaxStreamNameBytes = MaxStreamNameBytes,
            MaxStreamNameSegments = MaxStreamNameSegments,
            TlsCertificatePath = TlsCertificatePath,
            TlsKeyPath = TlsKeyPath,
            MemoryProducerRetention = ProducerRetention ?? ProducerRules.DefaultMemoryRetention,
        };
        foreach (var token in ReadTokens)
        {
            options.ReadTokens.Add(token);
        }
        foreach (var token in WriteTokens)
        {
            options.WriteTokens.Add(token);
        }
        options.CorsOrigins.Clear();
        foreach (var origin in CorsOrigins)
        {
            options.CorsOrigins.Add(origin);
        }

        return options;
    }

    private static string? GetDefaultDataDirectory()
    {
        var root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
        return string.IsNullOrEmpty(root) ? null : Path.Combine(root, "durable-streams");
    }
}
