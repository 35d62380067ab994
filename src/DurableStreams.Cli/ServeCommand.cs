using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Numerics;
using DurableStreams.Server;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;

namespace DurableStreams.Cli;

/// <summary>The <c>serve</c> command: hosts a Durable Streams server until Ctrl+C or SIGTERM.</summary>
internal sealed class ServeCommand
{
    /// <summary>How long a graceful stop may take before the server is disposed anyway.</summary>
    internal static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    // The engine's defaults are the single source of truth for the defaults shown in help.
    private static readonly DurableStreamServerOptions s_defaults = new();

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
        Description = "Keep streams in memory; they are lost when the server stops. This is the default store.",
    };

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

    private readonly Option<int> _maxReadChunkBytes = CreateIntegerOption(
        "--max-read-chunk-bytes",
        "Most bytes returned by one catch-up read response.",
        s_defaults.MaxReadChunkBytes,
        minimum: 1,
        maximum: int.MaxValue,
        helpName: "bytes");

    public ServeCommand()
    {
        _port.Aliases.Add("-p");
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
            _memory,
            _longPollTimeout,
            _sseReconnectInterval,
            _corsOrigins,
            _maxAppendBytes,
            _maxReadChunkBytes,
        };
        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    /// <summary>Reads the settings from a parse result without errors.</summary>
    public ServeOptions GetOptions(ParseResult parseResult) => new()
    {
        Host = parseResult.GetRequiredValue(_host),
        Port = parseResult.GetValue(_port),
        Store = ServeStore.Memory, // --memory, and the default while it is the only store
        LongPollTimeout = parseResult.GetValue(_longPollTimeout) ?? s_defaults.LongPollTimeout,
        SseReconnectInterval = parseResult.GetValue(_sseReconnectInterval) ?? s_defaults.SseReconnectInterval,
        CorsOrigins = parseResult.GetRequiredValue(_corsOrigins),
        MaxAppendBytes = parseResult.GetValue(_maxAppendBytes),
        MaxReadChunkBytes = parseResult.GetValue(_maxReadChunkBytes),
    };

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var error = parseResult.InvocationConfiguration.Error;
        var options = GetOptions(parseResult);

        // System.CommandLine registers its SIGINT/SIGTERM handler only after the action returns its task (at the
        // first await that does not complete at once), which can be after the URL line is printed: in testing, a
        // SIGTERM sent right after that line ended the process with 143. So when this invocation owns process
        // termination, serve registers its own handler before starting.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var signals = parseResult.InvocationConfiguration.ProcessTerminationTimeout is null
            ? null
            : new TerminationSignalHandler(stopping);

        await error.WriteLineAsync("Store: memory (streams are lost when the server stops)");

        // Warnings and errors (for example an unexpected failure behind a 500) go to stderr; stdout stays for the URL.
        using var loggerFactory = LoggerFactory.Create(logging => logging
            .SetMinimumLevel(LogLevel.Warning)
            .AddSimpleConsole(console => console.SingleLine = true)
            .AddFilter("Microsoft.AspNetCore", LogLevel.Error)
            .Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace));
        await using var server = new DurableStreamServer(options.ToServerOptions(), loggerFactory);
        try
        {
            await server.StartAsync(stopping.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or ArgumentException)
        {
            await error.WriteLineAsync($"Could not start the server on {options.Host}:{options.Port.ToString(CultureInfo.InvariantCulture)}: {ex.Message}");
            return 1;
        }

        await output.WriteLineAsync($"Durable Streams server listening on {server.BaseUrl.GetLeftPart(UriPartial.Authority)}");
        await output.WriteLineAsync($"Streams: {server.StreamsUrl}");
        await output.FlushAsync(CancellationToken.None);

        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, stopping.Token);
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
