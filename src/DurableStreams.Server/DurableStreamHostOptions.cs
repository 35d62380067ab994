// Every setting of a hosted server (`durable-streams serve`, `Start-DurableStreamServer`) is listed here once, with its
// default. DurableStreamHost turns these settings into the store's, the subscriptions' and the endpoints' options, so
// neither front end composes a server itself.
//
// Adding a setting:
//  1. Add it to the engine options it belongs to (DurableStreamsOptions / DurableStreamServerOptions for the endpoints,
//     FileStreamStoreOptions, MemoryStreamStoreOptions or PostgresStreamStoreOptions for a store), with an XML doc stating
//     its default and range, and check the range in that type's Validate (or the store's constructor).
//  2. Add it below as an init property whose default reads the engine's default (`s_server`, `s_file`), with an XML doc
//     naming the `serve` flag and the cmdlet parameter.
//  3. Map it in ToServerOptions or the To…StoreOptions method below (a test in DurableStreamHostTests checks the mapping).
//  4. `serve`: declare the option in src/DurableStreams.Cli/ServeCommand.Options.cs (help text with the default), add it
//     to the Command's option list and read it in ServeCommand.GetOptions; DS_* variables and --config keys follow from
//     the option name (ServeConfiguration). Test the parsing in tests/DurableStreams.Cli.Tests/ServeCommandTests.cs.
//  5. PowerShell, if the module offers it: a parameter on StartDurableStreamServerCommand (ServerCommands.cs) set in its
//     DurableStreamHostOptions, and its description in module/help/Start-DurableStreamServer.md.
//  6. Document it in README.md's serve option table (and docs/operations.md when operators need to know it).
using DurableStreams.Core.Retention;
using DurableStreams.Core.Subscriptions;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Storage.Files;
using DurableStreams.Storage.Postgres;

namespace DurableStreams.Server;

/// <summary>Which store a <see cref="DurableStreamHost"/> opens.</summary>
public enum HostedStoreKind
{
    /// <summary>The durable file store in <see cref="DurableStreamHostOptions.DataDirectory"/>.</summary>
    File,

    /// <summary>In-memory store; everything is lost when the server stops.</summary>
    Memory,

    /// <summary>The PostgreSQL store at <see cref="DurableStreamHostOptions.PostgresConnectionString"/>; any number of servers may share it.</summary>
    Postgres,
}

/// <summary>
/// Every setting of a server hosted by <see cref="DurableStreamHost"/>: the store to open, its limits, and the endpoint
/// and Kestrel settings. Defaults are the engine's (the option types these settings are mapped to). Front ends with
/// settings of their own (the tool's log format) derive from it.
/// </summary>
public record DurableStreamHostOptions
{
    private static readonly DurableStreamServerOptions s_server = new();
    private static readonly FileStreamStoreOptions s_file = new() { DataDirectory = "." };

    /// <summary>
    /// The data directory used when none is given: <c>durable-streams</c> under the user's local application data
    /// folder (<c>~/.local/share</c> on Linux, <c>%LOCALAPPDATA%</c> on Windows, <c>~/Library/Application Support</c> on
    /// macOS), so a server keeps its streams across restarts without writing into the current directory. Null when the
    /// platform reports no such folder.
    /// </summary>
    public static string? DefaultDataDirectory { get; } = GetDefaultDataDirectory();

    // ---- Store ----

    /// <summary>The store to open (<c>--memory</c>, <c>--postgres</c>, <c>-InMemory</c>); default <see cref="HostedStoreKind.Memory"/>
    /// (<c>serve</c> and <c>Start-DurableStreamServer</c> default to the file store).</summary>
    public HostedStoreKind Store { get; init; } = HostedStoreKind.Memory;

    /// <summary>Full path of the file store's data directory (<c>--data-dir</c>, <c>-DataPath</c>); required for <see cref="HostedStoreKind.File"/>.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>Npgsql connection string (<c>--postgres</c>, <c>DS_POSTGRES</c>); required for <see cref="HostedStoreKind.Postgres"/>.</summary>
    public string? PostgresConnectionString { get; init; }

    /// <summary>When the file store acknowledges appends relative to the disk (<c>--durability</c>); default <see cref="DurabilityMode.Always"/>.</summary>
    public DurabilityMode Durability { get; init; } = s_file.Durability;

    /// <summary>Sync period of <see cref="DurabilityMode.Interval"/> (<c>--sync-interval</c>); default 100 ms.</summary>
    public TimeSpan SyncInterval { get; init; } = s_file.SyncInterval;

    /// <summary>
    /// How long idle producer state is kept (<c>--producer-retention</c>); null (the default) keeps each store's default
    /// (file and PostgreSQL 30 days, memory 7 days).
    /// </summary>
    public TimeSpan? ProducerRetention { get; init; }

    /// <summary>Most forks deep a fork chain may grow (<c>--max-fork-depth</c>); passed to every store. Default 100.</summary>
    public int MaxForkDepth { get; init; } = ForkRules.DefaultMaxForkDepth;

    /// <summary>Most JSON messages per append or create body (<c>--max-messages-per-append</c>); passed to every store. Default 100,000.</summary>
    public int MaxMessagesPerAppend { get; init; } = AppendRules.DefaultMaxMessagesPerAppend;

    /// <summary>
    /// Retention policies (issue 18): the config file's <c>retention</c> rules and the server-wide default
    /// (<c>--retention-max-age</c>, <c>--retention-max-bytes</c>); passed to every store. Default
    /// <see cref="RetentionPolicies.None"/> (keep everything).
    /// </summary>
    public RetentionPolicies Retention { get; init; } = RetentionPolicies.None;

    /// <summary>How often the retention job passes over the streams (<c>--retention-interval</c>). Default 1 minute.</summary>
    public TimeSpan RetentionInterval { get; init; } = TimeSpan.FromMinutes(1);

    // ---- Features ----

    /// <summary>Serve the subscription APIs (§6–7); default on (<c>--no-subscriptions</c>, <c>-NoSubscriptions</c> turn them off).</summary>
    public bool Subscriptions { get; init; } = true;

    /// <summary>Whether webhooks may target <c>http://localhost</c> and <c>127.0.0.x</c> (<c>--allow-local-webhooks</c>); default off.</summary>
    public bool AllowLocalWebhooks { get; init; }

    /// <summary>Keep the stream registry <c>__registry__</c> (<c>--registry</c>, <c>-Registry</c>); default off.</summary>
    public bool Registry { get; init; }

    /// <summary>Serve the stream inspector page at <c>/</c>; default on (<c>--no-ui</c>, <c>-NoUi</c> turn it off).</summary>
    public bool Inspector { get; init; } = true;

    /// <summary>Serve <c>/metrics</c> in Prometheus text format (<c>--metrics</c>); default off.</summary>
    public bool Metrics { get; init; }

    /// <summary>Compress catch-up reads (<c>--compression</c>); default off.</summary>
    public bool Compression { get; init; }

    /// <summary>Who may cache stream data responses (<c>--cache-control</c>); default <see cref="CachePolicy.Auto"/>.</summary>
    public CachePolicy CachePolicy { get; init; } = s_server.CachePolicy;

    // ---- Listening ----

    /// <summary>IP address to listen on, or <c>localhost</c> (<c>--host</c>, <c>-HostName</c>); default 127.0.0.1.</summary>
    public string Host { get; init; } = s_server.Host;

    /// <summary>TCP port; 0 picks any free port (<c>--port</c>, <c>-Port</c>). Default 4437.</summary>
    public int Port { get; init; } = s_server.Port;

    /// <summary>PEM certificate (chain) file (<c>--tls-cert</c>); with <see cref="TlsKeyPath"/> the server speaks HTTPS. Default none.</summary>
    public string? TlsCertificatePath { get; init; }

    /// <summary>PEM private key file for <see cref="TlsCertificatePath"/> (<c>--tls-key</c>).</summary>
    public string? TlsKeyPath { get; init; }

    /// <summary>
    /// Plain HTTP speaks HTTP/2 only, with prior knowledge (h2c), instead of HTTP/1.1 (<c>--h2c</c>, <c>-H2c</c>); not with
    /// TLS, which offers both by ALPN. Default off.
    /// </summary>
    public bool CleartextHttp2 { get; init; }

    /// <summary>Most concurrent requests on one HTTP/2 connection (<c>--max-http2-streams</c>); default 1000.</summary>
    public int MaxHttp2StreamsPerConnection { get; init; } = s_server.MaxHttp2StreamsPerConnection;

    /// <summary>Allowed CORS origins (<c>--cors-origin</c>, <c>-CorsOrigin</c>); default <c>*</c>.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [.. s_server.CorsOrigins];

    /// <summary>Bearer tokens with the read scope (DS_READ_TOKENS or the config file; never the command line). Default none.</summary>
    public IReadOnlyList<string> ReadTokens { get; init; } = [];

    /// <summary>Bearer tokens with the write scope (DS_WRITE_TOKENS or the config file). Default none.</summary>
    public IReadOnlyList<string> WriteTokens { get; init; } = [];

    /// <summary>
    /// Bearer tokens with the admin scope: read, write and the admin routes such as on-demand compaction
    /// (DS_ADMIN_TOKENS, <c>--admin-token</c>, <c>-AdminToken</c> or the config file). Default none.
    /// </summary>
    public IReadOnlyList<string> AdminTokens { get; init; } = [];

    // ---- Limits ----

    /// <summary>How long a long-poll read waits before answering 204 (<c>--long-poll-timeout</c>); default 30 s.</summary>
    public TimeSpan LongPollTimeout { get; init; } = s_server.LongPollTimeout;

    /// <summary>How long an SSE response stays open (<c>--sse-reconnect-interval</c>); default 60 s.</summary>
    public TimeSpan SseReconnectInterval { get; init; } = s_server.SseReconnectInterval;

    /// <summary>Largest append body in bytes (<c>--max-append-bytes</c>); default 64 MiB.</summary>
    public long MaxAppendBytes { get; init; } = s_server.MaxAppendBytes;

    /// <summary>Most bytes of request bodies buffered at once (<c>--max-buffered-body-bytes</c>); default 256 MiB, at least <see cref="MaxAppendBytes"/>.</summary>
    public long MaxBufferedBodyBytes { get; init; } = s_server.MaxBufferedBodyBytes;

    /// <summary>Most bytes in one catch-up response (<c>--max-read-chunk-bytes</c>); null (the default) means no cap.</summary>
    public int? MaxReadChunkBytes { get; init; }

    /// <summary>Most long-poll and SSE readers at once (<c>--max-live-readers</c>); null (the default) means no cap.</summary>
    public int? MaxLiveReaders { get; init; }

    /// <summary>Requests per <see cref="RateLimitWindow"/> per client IP (<c>--rate-limit</c>); null (the default) means no limit.</summary>
    public int? RateLimitPermits { get; init; }

    /// <summary>The window of <see cref="RateLimitPermits"/> (<c>--rate-limit-window</c>); default 1 s.</summary>
    public TimeSpan RateLimitWindow { get; init; } = s_server.RateLimitWindow;

    /// <summary>How long a client may take to send its request headers (<c>--request-headers-timeout</c>); default 30 s.</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = s_server.RequestHeadersTimeout;

    /// <summary>Slowest accepted request body in bytes per second (<c>--min-request-body-rate</c>); default 240, 0 turns the check off.</summary>
    public double MinRequestBodyDataRate { get; init; } = s_server.MinRequestBodyDataRate;

    /// <summary>Longest stream name in UTF-8 bytes (<c>--max-stream-name-bytes</c>); default 4096.</summary>
    public int MaxStreamNameBytes { get; init; } = s_server.MaxStreamNameBytes;

    /// <summary>Most '/'-separated segments in a stream name (<c>--max-stream-name-segments</c>); default 64.</summary>
    public int MaxStreamNameSegments { get; init; } = s_server.MaxStreamNameSegments;

    // ---- Mapping to the engine's options ----

    /// <summary>The file store's settings; only for <see cref="HostedStoreKind.File"/>.</summary>
    /// <exception cref="InvalidOperationException">No <see cref="DataDirectory"/> is set.</exception>
    public FileStreamStoreOptions ToFileStoreOptions() => new()
    {
        DataDirectory = DataDirectory ?? throw new InvalidOperationException("The memory store has no data directory."),
        Durability = Durability,
        SyncInterval = SyncInterval,
        MaxForkDepth = MaxForkDepth,
        MaxMessagesPerAppend = MaxMessagesPerAppend,
        ProducerRetention = ProducerRetention ?? ProducerRules.DefaultPersistentRetention,
        Retention = Retention,
    };

    /// <summary>The memory store's settings.</summary>
    public MemoryStreamStoreOptions ToMemoryStoreOptions() => new()
    {
        MaxForkDepth = MaxForkDepth,
        MaxMessagesPerAppend = MaxMessagesPerAppend,
        ProducerRetention = ProducerRetention ?? ProducerRules.DefaultMemoryRetention,
        Retention = Retention,
    };

    /// <summary>The PostgreSQL store's settings; only for <see cref="HostedStoreKind.Postgres"/>.</summary>
    /// <exception cref="InvalidOperationException">No <see cref="PostgresConnectionString"/> is set.</exception>
    public PostgresStreamStoreOptions ToPostgresStoreOptions() => new()
    {
        ConnectionString = PostgresConnectionString ?? throw new InvalidOperationException("No PostgreSQL connection string was given."),
        MaxForkDepth = MaxForkDepth,
        MaxMessagesPerAppend = MaxMessagesPerAppend,
        ProducerRetention = ProducerRetention ?? ProducerRules.DefaultPersistentRetention,
        Retention = Retention,
    };

    /// <summary>
    /// The endpoint and Kestrel settings. A null <paramref name="store"/> selects an in-memory store owned by the server;
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
            CleartextHttp2 = CleartextHttp2,
            MaxHttp2StreamsPerConnection = MaxHttp2StreamsPerConnection,
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
        foreach (var token in AdminTokens)
        {
            options.AdminTokens.Add(token);
        }
        options.Retention = Retention;
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
