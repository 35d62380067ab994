using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using DurableStreams.Core.Retention;
using DurableStreams.Server;
using DurableStreams.Storage.Files;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>serve</c> command: hosts a Durable Streams server until Ctrl+C or SIGTERM. This file validates and reads the
/// options (declared in ServeCommand.Options.cs) and prints; <see cref="DurableStreamHost"/> composes the server.
/// </summary>
internal sealed partial class ServeCommand
{
    /// <summary>How long a graceful stop may take before the server is disposed anyway.</summary>
    internal static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

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
            _retentionMaxAge,
            _retentionMaxBytes,
            _retentionInterval,
            _compression,
            _cacheControl,
            _tlsCert,
            _tlsKey,
            _h2c,
            _maxHttp2Streams,
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
            if (result.GetResult(_h2c) is { Implicit: false } h2c && h2c.GetValueOrDefault<bool>() && result.GetResult(_tlsCert) is { Implicit: false })
            {
                result.AddError("--h2c cannot be combined with --tls-cert: over TLS, HTTP/2 is already offered by ALPN.");
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

    /// <summary>
    /// Reads the settings from a parse result without errors; <paramref name="retentionRules"/> are the config file's
    /// <c>retention</c> rules (<see cref="ServeConfiguration.Result.RetentionRules"/>), tried before the server-wide default.
    /// </summary>
    public ServeOptions GetOptions(ParseResult parseResult, IReadOnlyList<RetentionRule>? retentionRules = null) => new()
    {
        Host = parseResult.GetRequiredValue(_host),
        Port = parseResult.GetValue(_port),
        Store = GetPostgresConnectionString(parseResult) is not null ? HostedStoreKind.Postgres : parseResult.GetValue(_memory) ? HostedStoreKind.Memory : HostedStoreKind.File,
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
        Retention = GetRetention(parseResult, retentionRules ?? []),
        RetentionInterval = parseResult.GetValue(_retentionInterval) ?? s_hostDefaults.RetentionInterval,
        TlsCertificatePath = parseResult.GetValue(_tlsCert) is { } cert ? Path.GetFullPath(cert) : null,
        TlsKeyPath = parseResult.GetValue(_tlsKey) is { } key ? Path.GetFullPath(key) : null,
        CleartextHttp2 = parseResult.GetValue(_h2c),
        MaxHttp2StreamsPerConnection = parseResult.GetValue(_maxHttp2Streams),
    };

    private static readonly DurableStreamHostOptions s_hostDefaults = new();

    /// <summary>The config file's rules, then <c>--retention-max-age</c>/<c>--retention-max-bytes</c> for every other stream.</summary>
    private RetentionPolicies GetRetention(ParseResult parseResult, IReadOnlyList<RetentionRule> rules)
    {
        var fallback = new RetentionPolicy(parseResult.GetValue(_retentionMaxAge), parseResult.GetValue(_retentionMaxBytes));
        return rules.Count == 0 && !fallback.DropsData ? RetentionPolicies.None : new RetentionPolicies(rules, fallback);
    }

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
    /// <summary>The store as event 3000 names it.</summary>
    internal static string StoreLabel(HostedStoreKind store) => store switch
    {
        HostedStoreKind.File => "file",
        HostedStoreKind.Postgres => "postgres",
        _ => "memory",
    };

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

        var options = GetOptions(sources.ParseResult!, sources.RetentionRules) with { ReadTokens = sources.ReadTokens, WriteTokens = sources.WriteTokens, AdminTokens = sources.AdminTokens };

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

        DurableStreamHost host;
        try
        {
            host = await DurableStreamHost.OpenAsync(options, loggerFactory, stopping.Token);
        }
        catch (DurableStreamHostException ex)
        {
            await error.WriteLineAsync(ex.Message);
            return 1;
        }

        // Disposed after the server has stopped: the subscription state, then the store (which flushes and releases the directory).
        await using (host)
        {
            await error.WriteLineAsync(DescribeStore(options));
            return await HostAsync(parseResult.InvocationConfiguration, options, host, loggerFactory, stopping.Token);
        }
    }

    /// <summary>The line naming the store, written to stderr once it is open.</summary>
    private static string DescribeStore(ServeOptions options) => options.Store switch
    {
        HostedStoreKind.Postgres => "Store: postgres",
        HostedStoreKind.File => $"Store: file {options.DataDirectory} (durability {FormatDurability(options.Durability)}"
            + (options.Durability == DurabilityMode.Interval ? $", sync every {DurationParser.Format(options.SyncInterval)})" : ")"),
        _ => "Store: memory (streams are lost when the server stops)",
    };

    private static async Task<int> HostAsync(
        InvocationConfiguration configuration, ServeOptions options, DurableStreamHost host, ILoggerFactory loggerFactory, CancellationToken stopping)
    {
        var output = configuration.Output;
        var error = configuration.Error;
        try
        {
            await host.StartAsync(stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return 0;
        }
        catch (DurableStreamHostException ex)
        {
            await error.WriteLineAsync(ex.Message);
            return 1;
        }

        var server = host.Server;
        var url = server.BaseUrl.GetLeftPart(UriPartial.Authority);
        var file = options.Store == HostedStoreKind.File;
        var durability = file ? FormatDurability(options.Durability) : "-";
        var authentication = options.ReadTokens.Count + options.WriteTokens.Count + options.AdminTokens.Count > 0;
        var logger = loggerFactory.CreateLogger<ServeCommand>();
        var storeLabel = StoreLabel(options.Store);
        ServeLog.Started(
            logger,
            url,
            storeLabel,
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

        if (!await host.StopAsync(StopTimeout))
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
}
