using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Numerics;
using DurableStreams.Server;
using DurableStreams.Core;
using DurableStreams.Storage.Files;
using DurableStreams.Core.Memory;
using DurableStreams.Storage.Postgres;
using DurableStreams.Core.Subscriptions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Cli;

/// <summary>The <c>serve</c> command: hosts a Durable Streams server until Ctrl+C or SIGTERM.</summary>
internal sealed class ServeCommand
{
    /// <summary>How long a graceful stop may take before the server is disposed anyway.</summary>
    internal static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

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
        Description = "Keep the stream registry: a JSON stream __registry__ of create and delete events, which 'ls' reads.",
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
        Description = "JSON file of serve settings (keys are option names, e.g. {\"port\": 8080, \"dataDir\": \"/srv/ds\"}, plus readTokens and "
            + "writeTokens). Precedence: command line > DS_* environment variables > this file > defaults.",
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

    private readonly Func<string, string?> _getEnvironmentVariable;

    public ServeCommand()
        : this(Environment.GetEnvironmentVariable)
    {
    }

    /// <param name="getEnvironmentVariable">Reads DS_* settings; tests pass their own.</param>
    public ServeCommand(Func<string, string?> getEnvironmentVariable)
    {
        _getEnvironmentVariable = getEnvironmentVariable;
        _port.Aliases.Add("-p");
        _durability.CompletionSources.Add(s_durabilityNames.Select(n => n.Name).ToArray());
        _dataDirectory.Validators.Add(result =>
        {
            var path = result.GetValueOrDefault<string>();
            if (!TryGetFullPath(path, out _))
            {
                result.AddError($"Invalid value '{path}' for --data-dir: expected a directory path.");
            }
        });
        _host.Validators.Add(result =>
        {
            var host = result.GetValueOrDefault<string>();
            if (!IPAddress.TryParse(host, out _) && !string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            {
                result.AddError($"Invalid value '{host}' for --host: expected an IP address or 'localhost'.");
            }
        });
        _corsOrigins.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string[]>().Any(string.IsNullOrWhiteSpace))
            {
                result.AddError("Invalid value '' for --cors-origin: an origin must not be empty.");
            }
        });

        Command = new Command("serve", "Run a Durable Streams server until Ctrl+C or SIGTERM.")
        {
            _host,
            _port,
            _dataDirectory,
            _durability,
            _syncInterval,
            _producerRetention,
            _memory,
            _postgres,
            _longPollTimeout,
            _sseReconnectInterval,
            _corsOrigins,
            _maxAppendBytes,
            _maxBufferedBodyBytes,
            _maxReadChunkBytes,
            _noSubscriptions,
            _allowLocalWebhooks,
            _registry,
            _noUi,
            _metrics,
            _logLevel,
            _logFormat,
            _maxLiveReaders,
            _rateLimit,
            _rateLimitWindow,
            _requestHeadersTimeout,
            _minRequestBodyRate,
            _maxStreamNameBytes,
            _maxStreamNameSegments,
            _maxForkDepth,
            _maxMessagesPerAppend,
            _compression,
            _cacheControl,
            _tlsCert,
            _tlsKey,
            _config,
        };
        _logLevel.CompletionSources.Add(s_logLevels.Select(l => l.Name).ToArray());
        _logFormat.CompletionSources.Add("text", "json");
        _cacheControl.CompletionSources.Add("auto", "private", "public");
        Command.Validators.Add(result =>
        {
            if ((result.GetResult(_tlsCert) is { Implicit: false }) != (result.GetResult(_tlsKey) is { Implicit: false }))
            {
                result.AddError("--tls-cert and --tls-key must be given together.");
            }
            // An invalid value of either has its own error already.
            if (TryGetValueOrDefault(result, _maxBufferedBodyBytes, s_defaults.MaxBufferedBodyBytes, out var budget)
                && TryGetValueOrDefault(result, _maxAppendBytes, s_defaults.MaxAppendBytes, out var largest)
                && budget < largest)
            {
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"--max-buffered-body-bytes ({budget}) must be at least --max-append-bytes ({largest}): one body of the largest size must fit."));
            }
        });
        Command.Validators.Add(ValidateStoreOptions);
        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    /// <summary>The options that DS_* variables and the --config file may set (all but --config itself).</summary>
    internal IEnumerable<Option> ConfigurableOptions => Command.Options.Where(o => o != _config && o.Name != "--help" && o is not System.CommandLine.Help.HelpOption);

    internal Option<string?> ConfigOption => _config;

    internal Option<bool> MemoryOption => _memory;

    /// <summary>File store options that lower-precedence sources leave out when the memory store is chosen.</summary>
    internal IEnumerable<Option> FileStoreOptions => [_dataDirectory, _durability, _syncInterval];

    /// <summary>Reads the settings from a parse result without errors.</summary>
    public ServeOptions GetOptions(ParseResult parseResult) => new()
    {
        Host = parseResult.GetRequiredValue(_host),
        Port = parseResult.GetValue(_port),
        Store = GetPostgresConnectionString(parseResult) is not null ? ServeStore.Postgres : parseResult.GetValue(_memory) ? ServeStore.Memory : ServeStore.File,
        PostgresConnectionString = GetPostgresConnectionString(parseResult),
        DataDirectory = parseResult.GetValue(_memory) || GetPostgresConnectionString(parseResult) is not null
            ? null
            : Path.GetFullPath(parseResult.GetValue(_dataDirectory) ?? ServeOptions.DefaultDataDirectory!),
        Durability = parseResult.GetValue(_durability) ?? s_fileDefaults.Durability,
        SyncInterval = parseResult.GetValue(_syncInterval) ?? s_fileDefaults.SyncInterval,
        ProducerRetention = parseResult.GetValue(_producerRetention),
        LongPollTimeout = parseResult.GetValue(_longPollTimeout) ?? s_defaults.LongPollTimeout,
        SseReconnectInterval = parseResult.GetValue(_sseReconnectInterval) ?? s_defaults.SseReconnectInterval,
        CorsOrigins = parseResult.GetRequiredValue(_corsOrigins),
        MaxAppendBytes = parseResult.GetValue(_maxAppendBytes),
        MaxBufferedBodyBytes = parseResult.GetValue(_maxBufferedBodyBytes),
        MaxReadChunkBytes = parseResult.GetValue(_maxReadChunkBytes) is > 0 and var readBytes ? readBytes : null,
        Subscriptions = !parseResult.GetValue(_noSubscriptions),
        AllowLocalWebhooks = parseResult.GetValue(_allowLocalWebhooks),
        Registry = parseResult.GetValue(_registry),
        Inspector = !parseResult.GetValue(_noUi),
        Metrics = parseResult.GetValue(_metrics),
        Compression = parseResult.GetValue(_compression),
        CachePolicy = parseResult.GetValue(_cacheControl),
        LogLevel = parseResult.GetValue(_logLevel) ?? LogLevel.Warning,
        LogFormat = parseResult.GetValue(_logFormat) ?? "text",
        MaxLiveReaders = parseResult.GetValue(_maxLiveReaders) is > 0 and var readers ? readers : null,
        RateLimitPermits = parseResult.GetValue(_rateLimit) is > 0 and var permits ? permits : null,
        RateLimitWindow = parseResult.GetValue(_rateLimitWindow) ?? s_defaults.RateLimitWindow,
        RequestHeadersTimeout = parseResult.GetValue(_requestHeadersTimeout) ?? s_defaults.RequestHeadersTimeout,
        MinRequestBodyDataRate = parseResult.GetValue(_minRequestBodyRate),
        MaxStreamNameBytes = parseResult.GetValue(_maxStreamNameBytes),
        MaxStreamNameSegments = parseResult.GetValue(_maxStreamNameSegments),
        MaxForkDepth = parseResult.GetValue(_maxForkDepth),
        MaxMessagesPerAppend = parseResult.GetValue(_maxMessagesPerAppend),
        TlsCertificatePath = parseResult.GetValue(_tlsCert) is { } cert ? Path.GetFullPath(cert) : null,
        TlsKeyPath = parseResult.GetValue(_tlsKey) is { } key ? Path.GetFullPath(key) : null,
    };

    /// <summary>
    /// The PostgreSQL connection string: <c>--postgres</c>, else <c>DS_POSTGRES</c> unless another store was chosen
    /// explicitly; null for the memory and file stores.
    /// </summary>
    private string? GetPostgresConnectionString(ParseResult parseResult)
    {
        if (parseResult.GetValue(_postgres) is { Length: > 0 } explicitValue)
        {
            return explicitValue;
        }
        if (parseResult.GetValue(_memory) || parseResult.GetResult(_dataDirectory) is not null)
        {
            return null;
        }
        return Environment.GetEnvironmentVariable(PostgresEnvironmentVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null;
    }

    /// <summary>Formats a durability mode as it is written on the command line.</summary>
    internal static string FormatDurability(DurabilityMode mode) => s_durabilityNames.First(n => n.Mode == mode).Name;

    private void ValidateStoreOptions(CommandResult result)
    {
        if (result.GetResult(_postgres) is { Implicit: false })
        {
            // PostgreSQL keeps nothing in a local directory, so file and memory store settings next to it are mistakes.
            foreach (var option in new Option[] { _memory, _dataDirectory, _durability, _syncInterval })
            {
                if (result.GetResult(option) is { Implicit: false })
                {
                    result.AddError($"{option.Name} cannot be used with --postgres.");
                }
            }

            return;
        }

        if (result.GetValue(_memory))
        {
            // The memory store keeps nothing on disk, so file store settings next to --memory are a mistake, not a no-op.
            foreach (var option in new Option[] { _dataDirectory, _durability, _syncInterval })
            {
                if (result.GetResult(option) is { Implicit: false })
                {
                    result.AddError($"{option.Name} cannot be used with --memory: the memory store keeps nothing on disk.");
                }
            }

            return;
        }

        // An invalid --sync-interval or --durability has its own error already; do not add a second one about it.
        if (result.GetResult(_syncInterval) is not null
            && TryGetParsedValue(result, _syncInterval, out _)
            && TryGetParsedValue(result, _durability, out var durability)
            && (durability ?? s_fileDefaults.Durability) != DurabilityMode.Interval)
        {
            result.AddError("--sync-interval applies only with --durability interval.");
        }

        if (result.GetResult(_dataDirectory) is null && ServeOptions.DefaultDataDirectory is null)
        {
            result.AddError("This system reports no local application data folder for the default data directory; pass --data-dir <path> or --memory.");
        }
    }

    /// <summary>Reads an option's value in a command validator; false when the value failed to parse (and has its own error).</summary>
    /// <summary>The parsed value, or <paramref name="fallback"/> when the option was not given (a validator sees no default).</summary>
    private static bool TryGetValueOrDefault(CommandResult result, Option<long> option, long fallback, out long value)
    {
        if (result.GetResult(option) is null)
        {
            value = fallback;
            return true;
        }
        return TryGetParsedValue(result, option, out value);
    }

    private static bool TryGetParsedValue<T>(CommandResult result, Option<T> option, out T? value)
    {
        try
        {
            value = result.GetValue(option);
            return true;
        }
        catch (InvalidOperationException)
        {
            // System.CommandLine throws when a value with a parse error is read.
            value = default;
            return false;
        }
    }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var error = parseResult.InvocationConfiguration.Error;
        var sources = ServeConfiguration.Apply(this, parseResult, _getEnvironmentVariable);
        if (sources.Errors.Count > 0)
        {
            foreach (var message in sources.Errors)
            {
                await error.WriteLineAsync(message);
            }

            return CommandLineRunner.UsageErrorExitCode;
        }

        var options = GetOptions(sources.ParseResult!) with { ReadTokens = sources.ReadTokens, WriteTokens = sources.WriteTokens };

        // System.CommandLine registers its SIGINT/SIGTERM handler only after the action returns its task (at the
        // first await that does not complete at once), which can be after the URL line is printed: in testing, a
        // SIGTERM sent right after that line ended the process with 143. So when this invocation owns process
        // termination, serve registers its own handler before starting.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var signals = parseResult.InvocationConfiguration.ProcessTerminationTimeout is null
            ? null
            : new TerminationSignalHandler(stopping);

        // Warnings and errors (for example an unexpected failure behind a 500, or a stream cut back during recovery) go
        // to stderr; stdout stays for the URL.
        using var loggerFactory = ServeLog.CreateLoggerFactory(options.LogLevel, options.LogFormat);

        IStreamStore? store = null;
        FileSubscriptionStateStore? subscriptionState = null;
        ISubscriptionRepository? subscriptionRepository = null;
        if (options.Store == ServeStore.Postgres)
        {
            try
            {
                var postgres = await PostgresStreamStore.OpenAsync(options.ToPostgresStoreOptions(), stopping.Token);
                store = postgres;
                // Shared by every node on the database, so any node serves any subscription call.
                subscriptionRepository = options.Subscriptions ? postgres.CreateSubscriptionRepository() : null;
            }
            catch (Exception ex) when (ex is StoreUnavailableException or ArgumentException or InvalidOperationException or Npgsql.NpgsqlException)
            {
                await error.WriteLineAsync($"Could not open the PostgreSQL store: {ex.Message}");
                return 1;
            }

            await error.WriteLineAsync("Store: postgres");
        }
        else if (options.Store == ServeStore.File)
        {
            try
            {
                store = FileStreamStore.Open(options.ToFileStoreOptions(), loggerFactory);
            }
            catch (InvalidOperationException ex) when (ex.InnerException is IOException)
            {
                // The store's own message names the directory and says another process holds it.
                await error.WriteLineAsync(ex.Message);
                return 1;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                await error.WriteLineAsync($"Could not open the data directory '{options.DataDirectory}': {ex.Message}");
                return 1;
            }

            var syncInterval = options.Durability == DurabilityMode.Interval
                ? $", sync every {DurationParser.Format(options.SyncInterval)}"
                : string.Empty;
            await error.WriteLineAsync($"Store: file {options.DataDirectory} (durability {FormatDurability(options.Durability)}{syncInterval})");
            if (options.Subscriptions)
            {
                try
                {
                    // Inside the data directory, under the file store's directory lock.
                    subscriptionState = FileSubscriptionStateStore.Open(options.DataDirectory!);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
                {
                    await error.WriteLineAsync($"Could not open the subscription state in '{options.DataDirectory}': {ex.Message}");
                    await store.DisposeAsync();
                    return 1;
                }
            }
        }
        else
        {
            // Created here rather than by the server so the store limits apply; disposed below like the others.
            store = new MemoryStreamStore(options.ToMemoryStoreOptions());
            await error.WriteLineAsync("Store: memory (streams are lost when the server stops)");
        }

        try
        {
            return await HostAsync(parseResult.InvocationConfiguration, options, store, subscriptionState, subscriptionRepository, loggerFactory, stopping.Token);
        }
        finally
        {
            if (subscriptionState is not null)
            {
                await subscriptionState.DisposeAsync();
            }

            // Only after the server has stopped: the file store flushes what it holds and releases the directory.
            if (store is not null)
            {
                await store.DisposeAsync();
            }
        }
    }

    private static async Task<int> HostAsync(
        InvocationConfiguration configuration,
        ServeOptions options,
        IStreamStore? store,
        ISubscriptionStateStore? subscriptionState,
        ISubscriptionRepository? subscriptionRepository,
        ILoggerFactory loggerFactory,
        CancellationToken stopping)
    {
        var output = configuration.Output;
        var error = configuration.Error;

        // A store passed in is not disposed by the server; RunAsync disposes it after this returns.
        await using var server = new DurableStreamServer(options.ToServerOptions(store, subscriptionState, subscriptionRepository), loggerFactory);
        try
        {
            await server.StartAsync(stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ArgumentException or System.Security.Cryptography.CryptographicException)
        {
            // A missing or unreadable --tls-cert/--tls-key lands here too (IOException or CryptographicException).
            await error.WriteLineAsync($"Could not start the server on {options.Host}:{options.Port.ToString(CultureInfo.InvariantCulture)}: {ex.Message}");
            return 1;
        }

        var url = server.BaseUrl.GetLeftPart(UriPartial.Authority);
        var file = options.Store == ServeStore.File;
        var durability = file ? FormatDurability(options.Durability) : "-";
        var authentication = options.ReadTokens.Count + options.WriteTokens.Count > 0;
        var logger = loggerFactory.CreateLogger<ServeCommand>();
        ServeLog.Started(
            logger,
            url,
            file ? "file" : "memory",
            options.DataDirectory ?? "-",
            durability,
            options.Registry,
            authentication);
        await output.WriteLineAsync($"Durable Streams server listening on {url}");
        await output.WriteLineAsync($"Streams: {server.StreamsUrl}");
        if (options.Inspector)
        {
            await output.WriteLineAsync($"Inspector: {server.BaseUrl}");
        }
        await output.FlushAsync(CancellationToken.None);

        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, stopping);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C, SIGTERM or the caller's token: stop gracefully below.
        }

        using var stopTimeout = new CancellationTokenSource(StopTimeout);
        try
        {
            await server.StopAsync(stopTimeout.Token);
        }
        catch (OperationCanceledException) when (stopTimeout.IsCancellationRequested)
        {
            await error.WriteLineAsync($"The server did not stop within {DurationParser.Format(StopTimeout)}; open connections were dropped.");
            return 1;
        }

        return 0;
    }

    private static bool TryGetFullPath(string? path, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? fullPath)
    {
        fullPath = null;
        if (string.IsNullOrWhiteSpace(path))
        {
            return false;
        }

        try
        {
            fullPath = Path.GetFullPath(path);
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return false;
        }
    }

    private static Option<TimeSpan?> CreateDurationOption(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = $"{description} (default: {DurationParser.Format(defaultValue)}). Examples: 500ms, 30s, 2m, 1h.",
        HelpName = "duration",
        CustomParser = result =>
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
        },
    };

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
