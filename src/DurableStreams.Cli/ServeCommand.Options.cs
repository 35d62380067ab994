using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Numerics;
using DurableStreams.Core;
using DurableStreams.Protocol;
using DurableStreams.Server;
using DurableStreams.Storage.Files;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Cli;

/// <summary>The options of <c>serve</c>: one field per flag, with its help text, parser and default.</summary>
internal sealed partial class ServeCommand
{
    // The engine's defaults are the single source of truth for the defaults shown in help.
    private static readonly DurableStreamServerOptions s_defaults = new();
    private static readonly FileStreamStoreOptions s_fileDefaults = new() { DataDirectory = "." };

    private static readonly (string Name, DurabilityMode Mode)[] s_durabilityNames =
    [
        ("always", DurabilityMode.Always),
        ("interval", DurabilityMode.Interval),
        ("none", DurabilityMode.None),
    ];

    private readonly Option<string> _host = new("--host")
    {
        Description = "IP address to listen on, or localhost.",
        DefaultValueFactory = _ => s_defaults.Host,
        HelpName = "address",
    };

    private readonly Option<int> _port = CreateIntegerOption(
        "--port",
        "TCP port to listen on; 0 picks any free port.",
        s_defaults.Port,
        minimum: 0,
        maximum: IPEndPoint.MaxPort,
        helpName: "port");

    private readonly Option<bool> _memory = new("--memory")
    {
        Description = "Keep streams in memory instead of the file store; they are lost when the server stops.",
    };

    /// <summary>The environment variable <c>--postgres</c> falls back to.</summary>
    internal const string PostgresEnvironmentVariable = "DS_POSTGRES";

    private readonly Option<string> _postgres = new("--postgres")
    {
        Description = "Store streams in PostgreSQL (an Npgsql connection string); any number of servers may share the database. "
            + $"Also read from {PostgresEnvironmentVariable} when neither --memory nor --data-dir is given.",
        HelpName = "connection-string",
    };

    private readonly Option<string> _dataDirectory = new("--data-dir", "-d")
    {
        Description = "Directory of the durable file store, created if missing; one server at a time may use it "
            + $"(default: {ServeOptions.DefaultDataDirectory ?? "none on this system; pass --data-dir or --memory"}).",
        HelpName = "path",
    };

    private readonly Option<DurabilityMode?> _durability = new("--durability")
    {
        Description = "When the file store acknowledges an append: always = once it is synced to disk (nothing acknowledged is "
            + "lost, even on power failure); interval = once the OS has it, syncing every --sync-interval (a power cut can lose "
            + "about one interval); none = once the OS has it, never syncing (a power cut can lose anything not yet written "
            + "back). A process crash loses nothing in any mode (default: always).",
        HelpName = string.Join('|', s_durabilityNames.Select(n => n.Name)),
        CustomParser = result =>
        {
            var text = SingleToken(result);
            foreach (var (name, mode) in s_durabilityNames)
            {
                if (string.Equals(text, name, StringComparison.OrdinalIgnoreCase))
                {
                    return mode;
                }
            }

            result.AddError($"Invalid value '{text}' for --durability: expected always, interval or none.");
            return null;
        },
    };

    private readonly Option<TimeSpan?> _syncInterval = CreateDurationOption(
        "--sync-interval",
        "How often the file store syncs to disk with --durability interval",
        s_fileDefaults.SyncInterval);

    private readonly Option<TimeSpan?> _producerRetention = CreateDurationOption(
        "--producer-retention",
        "How long an idle idempotent producer's (epoch, seq) is kept; after that its next append starts it anew (--memory: 168h)",
        ProducerRules.DefaultPersistentRetention);

    private readonly Option<TimeSpan?> _longPollTimeout = CreateDurationOption(
        "--long-poll-timeout",
        "How long a long-poll read waits for new data before answering 204",
        s_defaults.LongPollTimeout);

    private readonly Option<TimeSpan?> _sseReconnectInterval = CreateDurationOption(
        "--sse-reconnect-interval",
        "How long an SSE response stays open before the server closes it and the client reconnects",
        s_defaults.SseReconnectInterval);

    private readonly Option<string[]> _corsOrigins = new("--cors-origin")
    {
        Description = "Origin allowed by CORS; repeat for several origins. '*' allows any origin.",
        DefaultValueFactory = _ => s_defaults.CorsOrigins.ToArray(),
        HelpName = "origin",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<long> _maxAppendBytes = CreateIntegerOption(
        "--max-append-bytes",
        "Largest request body accepted by an append, in bytes.",
        s_defaults.MaxAppendBytes,
        minimum: 1,
        maximum: long.MaxValue,
        helpName: "bytes");

    private readonly Option<long> _maxBufferedBodyBytes = CreateIntegerOption(
        "--max-buffered-body-bytes",
        "Most bytes of request bodies held in memory at once across all requests; a request over it gets 503 with Retry-After. At least --max-append-bytes.",
        s_defaults.MaxBufferedBodyBytes,
        minimum: 1,
        maximum: long.MaxValue,
        helpName: "bytes");

    private readonly Option<int> _maxReadChunkBytes = CreateIntegerOption(
        "--max-read-chunk-bytes",
        "Most bytes returned by one catch-up read response. 0 (the default) means no cap: a catch-up response runs to the tail, sent in 1 MiB pieces. With a cap, clients that read one response in catch-up mode (the TypeScript client's live: false) get only the first.",
        0,
        minimum: 0,
        maximum: int.MaxValue,
        helpName: "bytes");

    private readonly Option<bool> _noSubscriptions = new("--no-subscriptions")
    {
        Description = "Turn off the subscription APIs under /v1/stream/__ds/ (webhook and pull-wake delivery); they are on by default.",
    };

    private readonly Option<bool> _allowLocalWebhooks = new("--allow-local-webhooks")
    {
        Description = "Accept http webhook URLs on localhost and 127.0.0.x (for development); off by default, so webhooks go only to public https addresses.",
    };

    private readonly Option<bool> _noUi = new("--no-ui")
    {
        Description = "Turn off the stream inspector page at / (on by default; it reads streams through the API with the user's token).",
    };

    private readonly Option<bool> _registry = new("--registry")
    {
        Description = $"Keep the stream registry: a JSON stream {RegistryStream.Name} of create and delete events, which 'ls' reads.",
    };

    private static readonly (string Name, LogLevel Level)[] s_logLevels =
    [
        ("trace", LogLevel.Trace),
        ("debug", LogLevel.Debug),
        ("information", LogLevel.Information),
        ("warning", LogLevel.Warning),
        ("error", LogLevel.Error),
        ("critical", LogLevel.Critical),
        ("none", LogLevel.None),
    ];

    private readonly Option<string?> _config = new("--config")
    {
        Description = "JSON file of serve settings (keys are option names, e.g. {\"port\": 8080, \"dataDir\": \"/srv/ds\"}, plus readTokens, "
            + "writeTokens and retention rules [{\"streams\": \"logs/**\", \"maxAge\": \"7d\", \"maxBytes\": \"10GiB\"}]). "
            + "Precedence: command line > DS_* environment variables > this file > defaults.",
        HelpName = "path",
    };

    private readonly Option<bool> _metrics = new("--metrics")
    {
        Description = "Serve metrics in Prometheus text format at /metrics.",
    };

    private readonly Option<LogLevel?> _logLevel = new("--log-level")
    {
        Description = "Least severe log events written to stderr (default: warning; information adds the start-up line, debug one line per request).",
        HelpName = string.Join('|', s_logLevels.Select(l => l.Name)),
        CustomParser = result =>
        {
            var text = SingleToken(result);
            foreach (var (name, level) in s_logLevels)
            {
                if (string.Equals(text, name, StringComparison.OrdinalIgnoreCase))
                {
                    return level;
                }
            }

            result.AddError($"Invalid value '{text}' for --log-level: expected {string.Join(", ", s_logLevels.Select(l => l.Name))}.");
            return null;
        },
    };

    private readonly Option<string> _logFormat = new("--log-format")
    {
        Description = "Log format on stderr: text (one line per event) or json (one JSON object per line).",
        DefaultValueFactory = _ => "text",
        HelpName = "text|json",
        CustomParser = result =>
        {
            var text = SingleToken(result);
            if (text.Equals("text", StringComparison.OrdinalIgnoreCase) || text.Equals("json", StringComparison.OrdinalIgnoreCase))
            {
                return text.ToLowerInvariant();
            }

            result.AddError($"Invalid value '{text}' for --log-format: expected text or json.");
            return "text";
        },
    };

    private readonly Option<int> _maxLiveReaders = CreateIntegerOption(
        "--max-live-readers",
        "Most long-poll and SSE readers at once; more get 503 with Retry-After. 0 means no cap.",
        0,
        minimum: 0,
        maximum: int.MaxValue,
        helpName: "count");

    private readonly Option<int> _rateLimit = CreateIntegerOption(
        "--rate-limit",
        "Requests per --rate-limit-window each client IP address may make; more get 429 with Retry-After. 0 means no limit.",
        0,
        minimum: 0,
        maximum: int.MaxValue,
        helpName: "requests");

    private readonly Option<TimeSpan?> _rateLimitWindow = CreateDurationOption(
        "--rate-limit-window",
        "The window of --rate-limit",
        s_defaults.RateLimitWindow);

    private readonly Option<TimeSpan?> _requestHeadersTimeout = CreateDurationOption(
        "--request-headers-timeout",
        "How long a client may take to send its request headers before the connection is closed",
        s_defaults.RequestHeadersTimeout);

    private readonly Option<int> _minRequestBodyRate = CreateIntegerOption(
        "--min-request-body-rate",
        "Slowest accepted request body in bytes per second, checked over every 5 s window of the upload; a slower body gets 408 and its connection is closed. 0 turns the check off.",
        (int)s_defaults.MinRequestBodyDataRate,
        minimum: 0,
        maximum: int.MaxValue,
        helpName: "bytes");

    private readonly Option<int> _maxStreamNameBytes = CreateIntegerOption(
        "--max-stream-name-bytes",
        "Longest stream name in UTF-8 bytes; longer names get 400.",
        s_defaults.MaxStreamNameBytes,
        minimum: 1,
        maximum: int.MaxValue,
        helpName: "bytes");

    private readonly Option<int> _maxStreamNameSegments = CreateIntegerOption(
        "--max-stream-name-segments",
        "Most '/'-separated segments in a stream name; more get 400.",
        s_defaults.MaxStreamNameSegments,
        minimum: 1,
        maximum: int.MaxValue,
        helpName: "count");

    private readonly Option<int> _maxForkDepth = CreateIntegerOption(
        "--max-fork-depth",
        "Most forks deep a fork chain may grow (a fork of a fork of ... a stream); a deeper fork gets 400.",
        ForkRules.DefaultMaxForkDepth,
        minimum: 1,
        maximum: int.MaxValue,
        helpName: "count");

    private readonly Option<int> _maxMessagesPerAppend = CreateIntegerOption(
        "--max-messages-per-append",
        "Most JSON messages (values of a top-level array) one append or create body may carry; more get 413.",
        AppendRules.DefaultMaxMessagesPerAppend,
        minimum: 1,
        maximum: int.MaxValue,
        helpName: "count");

    private readonly Option<TimeSpan?> _retentionMaxAge = new("--retention-max-age")
    {
        Description = "Server-wide retention: drop data older than this from the front of every stream no config-file 'retention' rule "
            + "matches (default: keep everything). Readers of dropped offsets get 410 with Stream-Retained-Start. Examples: 12h, 7d.",
        HelpName = "duration",
        CustomParser = result => ParsePositiveDuration(result, "--retention-max-age"),
    };

    private readonly Option<long?> _retentionMaxBytes = new("--retention-max-bytes")
    {
        Description = "Server-wide retention: keep at most about this many bytes of each stream no config-file 'retention' rule matches, "
            + "dropping whole messages from the front (default: keep everything). Examples: 500MB, 10GiB, 1048576.",
        HelpName = "size",
        CustomParser = result =>
        {
            var text = SingleToken(result);
            if (!SizeParser.TryParse(text, out var bytes) || bytes <= 0)
            {
                result.AddError($"Invalid value '{text}' for --retention-max-bytes: expected {SizeParser.ExpectedFormat}, greater than zero.");
                return null;
            }
            return bytes;
        },
    };

    private readonly Option<TimeSpan?> _retentionInterval = CreateDurationOption(
        "--retention-interval",
        "How often the retention job passes over the streams to drop what their policy no longer keeps",
        new DurableStreamHostOptions().RetentionInterval);

    private readonly Option<bool> _compression = new("--compression")
    {
        Description = "Compress catch-up reads with brotli or gzip when the client accepts it (never SSE or long-poll); ETags become weak.",
    };

    private readonly Option<CachePolicy> _cacheControl = new("--cache-control")
    {
        Description = "Who may cache catch-up and long-poll reads: private (Cache-Control: private and Vary: Authorization), "
            + "public (shared caches and CDNs too), or auto = private when tokens are configured, else public. Use public with "
            + "tokens only behind a cache that authorises every request itself.",
        DefaultValueFactory = _ => CachePolicy.Auto,
        HelpName = "auto|private|public",
        CustomParser = result =>
        {
            var text = SingleToken(result);
            if (Enum.TryParse<CachePolicy>(text, ignoreCase: true, out var policy) && Enum.IsDefined(policy) && !int.TryParse(text, out _))
            {
                return policy;
            }

            result.AddError($"Invalid value '{text}' for --cache-control: expected auto, private or public.");
            return CachePolicy.Auto;
        },
    };

    private readonly Option<string?> _tlsCert = new("--tls-cert")
    {
        Description = "PEM certificate (chain) file; with --tls-key the server speaks HTTPS with HTTP/1.1 and HTTP/2.",
        HelpName = "path",
    };

    private readonly Option<string?> _tlsKey = new("--tls-key")
    {
        Description = "PEM private key file for --tls-cert.",
        HelpName = "path",
    };

    private readonly Option<bool> _h2c = new("--h2c")
    {
        Description = "Plain HTTP speaks HTTP/2 only, with prior knowledge (h2c), instead of HTTP/1.1: one port cannot offer both "
            + "without TLS. Not with --tls-cert, which offers HTTP/1.1 and HTTP/2 by ALPN.",
    };

    private readonly Option<int> _maxHttp2Streams = CreateIntegerOption(
        "--max-http2-streams",
        "Most concurrent requests on one HTTP/2 connection (h2c or TLS); each live SSE or long-poll read holds one.",
        DurableStreamServerOptions.DefaultMaxHttp2StreamsPerConnection,
        minimum: 1,
        maximum: 100_000,
        helpName: "count");


    private static Option<TimeSpan?> CreateDurationOption(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = $"{description} (default: {DurationParser.Format(defaultValue)}). Examples: 500ms, 30s, 2m, 1h.",
        HelpName = "duration",
        CustomParser = result => ParsePositiveDuration(result, name),
    };

    private static TimeSpan? ParsePositiveDuration(ArgumentResult result, string name)
    {
        var text = SingleToken(result);
        if (!DurationParser.TryParse(text, out var duration))
        {
            result.AddError($"Invalid value '{text}' for {name}: expected {DurationParser.ExpectedFormat}.");
            return null;
        }

        if (duration <= TimeSpan.Zero)
        {
            result.AddError($"Invalid value '{text}' for {name}: the duration must be greater than zero.");
            return null;
        }

        return duration;
    }

    private static Option<T> CreateIntegerOption<T>(string name, string description, T defaultValue, T minimum, T maximum, string helpName)
        where T : struct, IBinaryInteger<T>
    {
        return new Option<T>(name)
        {
            Description = description,
            HelpName = helpName,
            DefaultValueFactory = _ => defaultValue,
            CustomParser = result =>
            {
                var text = SingleToken(result);
                if (!T.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
                    || value < minimum
                    || value > maximum)
                {
                    result.AddError(string.Create(
                        CultureInfo.InvariantCulture,
                        $"Invalid value '{text}' for {name}: expected a whole number from {minimum} to {maximum}."));
                    return default;
                }

                return value;
            },
        };
    }

    private static string SingleToken(ArgumentResult result) => result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
}
