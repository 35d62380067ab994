using System.CommandLine;
using DurableStreams.Client;
using DurableStreams.Protocol;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>read</c> command: writes a stream's data to standard output, catching up to the tail and exiting, or with
/// <c>--follow</c> tailing it until it is closed or Ctrl+C. The <c>follow</c> command is the same with <c>--follow</c> implied.
/// </summary>
/// <remarks>
/// Ctrl+C (or SIGTERM) stops a read cleanly: the output written so far is complete (a <c>--output json</c> array is
/// closed), the offset reached goes to standard error, and the exit code is 0. Failed requests are retried with back-off
/// (a follow until Ctrl+C, unless <c>--max-retries</c> or <c>--retry-for</c> ends it); when a read gives up, its error
/// line is followed by the offset to resume from.
/// </remarks>
internal sealed class ReadCommand
{
    private static readonly (string Name, LiveMode Mode)[] s_liveNames = [("long-poll", LiveMode.LongPoll), ("sse", LiveMode.Sse)];

    private static readonly OutputFormat[] s_formats = [OutputFormat.Raw, OutputFormat.Json, OutputFormat.JsonLines, OutputFormat.Pretty];

    private readonly ClientOptions _client;
    private readonly bool _alwaysFollow;
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    private readonly Option<string> _offset = new("--offset")
    {
        Description = "Where to start: -1 (the beginning), now (the tail: new data only) or an offset printed by --print-offset (default: -1).",
        HelpName = "offset",
        DefaultValueFactory = _ => "-1",
    };

    private readonly Option<bool> _follow = new("--follow", "-f")
    {
        Description = "Keep reading new data until the stream is closed or Ctrl+C (the follow command does this).",
    };

    private readonly Option<string> _live = new("--live")
    {
        Description = "How following waits for new data (default: long-poll).",
        DefaultValueFactory = _ => "long-poll",
    };

    private readonly Option<string?> _output;

    /// <summary>The older spelling of <c>--output</c>, kept working and hidden.</summary>
    private readonly Option<string?> _format;

    private readonly Option<long?> _maxBytes = new("--max-bytes")
    {
        Description = "Stop after this many bytes of stream data. JSON streams stop before the first message that would go past it.",
        HelpName = "bytes",
    };

    private readonly Option<long?> _maxMessages = new("--max-messages")
    {
        Description = "Stop after this many messages: JSON values on a JSON stream; on any other stream, lines (each ending in a newline).",
        HelpName = "count",
    };

    private readonly Option<int?> _maxRetries = new("--max-retries")
    {
        Description = "Give up after this many failed attempts in a row (refused or dropped connections, timeouts, 429, 5xx); "
            + "each answer from the server starts the count again (default: follow retries until Ctrl+C; read without --follow tries 3 times).",
        HelpName = "count",
    };

    private readonly Option<TimeSpan?> _retryFor = new("--retry-for")
    {
        Description = "Give up after retrying this long without an answer from the server, for example 30s or 5m (default: no limit).",
        HelpName = "duration",
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
            if (!DurationParser.TryParse(text, out var duration) || duration <= TimeSpan.Zero)
            {
                result.AddError($"Invalid value '{text}' for --retry-for: expected a duration greater than zero, as {DurationParser.ExpectedFormat}.");
                return null;
            }

            return duration;
        },
    };

    private readonly Option<bool> _printOffset = new("--print-offset")
    {
        Description = "At the end, write the offset to resume from to standard error (also after Ctrl+C or a --max-* limit).",
    };

    /// <param name="client">The shared client options.</param>
    /// <param name="alwaysFollow">True for the <c>follow</c> command: no <c>--follow</c> option, always tailing.</param>
    public ReadCommand(ClientOptions client, bool alwaysFollow = false)
    {
        _client = client;
        _alwaysFollow = alwaysFollow;
        _live.AcceptOnlyFromAmong([.. s_liveNames.Select(n => n.Name)]);
        var name = alwaysFollow ? "follow" : "read";
        _output = OutputOption.Create(
            name,
            s_formats,
            "raw = the bytes as stored (a JSON stream's batches as JSON arrays, one a line); json = one JSON array of all messages; "
            + "jsonl = one JSON message per line; pretty = each message as indented JSON. json, jsonl and pretty need a JSON stream (default: raw).");
        _format = OutputOption.CreateAlias("--format", name, s_formats);
        _offset.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
            {
                result.AddError("Invalid value '' for --offset: expected -1, now or an offset.");
            }
        });
        _maxRetries.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 0)
            {
                result.AddError("Invalid value for --max-retries: expected a whole number of at least 0.");
            }
        });
        foreach (var limit in new[] { _maxBytes, _maxMessages })
        {
            limit.Validators.Add(result =>
            {
                if (result.GetValueOrDefault<long?>() is < 1)
                {
                    result.AddError($"Invalid value for {result.Option.Name}: expected a whole number of at least 1.");
                }
            });
        }

        Command = alwaysFollow
            ? new Command("follow", "Tail a stream: write its data to standard output, then new data as it arrives, until the stream is closed or Ctrl+C (read --follow).")
            : new Command("read", "Write a stream's data to standard output.");
        Command.Arguments.Add(_stream);
        Command.Options.Add(_offset);
        if (!alwaysFollow)
        {
            Command.Options.Add(_follow);
        }

        Command.Options.Add(_live);
        Command.Options.Add(_output);
        Command.Options.Add(_format);
        ClientOptions.AddExclusive(Command, _output, _format);
        Command.Options.Add(_maxBytes);
        Command.Options.Add(_maxMessages);
        Command.Options.Add(_maxRetries);
        Command.Options.Add(_retryFor);
        Command.Options.Add(_printOffset);
        if (!alwaysFollow)
        {
            Command.Validators.Add(result =>
            {
                if (result.GetResult(_live) is { Implicit: false } && result.GetResult(_follow) is null)
                {
                    result.AddError("--live applies only with --follow.");
                }
            });
        }

        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var stream = parseResult.GetRequiredValue(_stream);
        var follow = _alwaysFollow || parseResult.GetValue(_follow);

        // As in serve: when this invocation owns process termination, Ctrl+C and SIGTERM end a read gracefully (exit 0).
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var signals = parseResult.InvocationConfiguration.ProcessTerminationTimeout is not null
            ? new TerminationSignalHandler(stopping)
            : null;
        var token = stopping.Token;

        var offset = parseResult.GetRequiredValue(_offset);
        var options = new ReadOptions
        {
            Offset = offset,
            Live = follow ? s_liveNames.First(n => n.Name == parseResult.GetRequiredValue(_live)).Mode : LiveMode.None,
            MaxRetries = parseResult.GetValue(_maxRetries),
            RetryFor = parseResult.GetValue(_retryFor),
        };
        var outputFormat = OutputOption.Resolve(parseResult, _output, OutputFormat.Raw, alias: _format);
        var format = outputFormat switch
        {
            OutputFormat.Json => ReadFormat.Json,
            OutputFormat.JsonLines => ReadFormat.JsonLines,
            OutputFormat.Pretty => ReadFormat.Pretty,
            _ => ReadFormat.Raw,
        };
        var maxBytes = parseResult.GetValue(_maxBytes);
        var maxMessages = parseResult.GetValue(_maxMessages);
        var printOffset = parseResult.GetValue(_printOffset);
        var error = parseResult.InvocationConfiguration.Error;

        return await _client.RunAsync(parseResult, stream, async client =>
        {
            // The stream's type matters for every format (a JSON stream's raw batches end in newlines) and the limits;
            // the tail sizes a catch-up's progress bar.
            var progress = follow ? null : _client.CreateProgressBar(parseResult, "Reading", total: null);
            StreamMetadata? metadata = null;
            try
            {
                metadata = await client.GetMetadataAsync(stream, token);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                await error.WriteLineAsync($"Stopped before any data arrived; resume with --offset {offset}.");
                return ExitCodes.Success;
            }

            var json = metadata?.ContentType is { } contentType && ContentTypes.IsJson(contentType);
            if (format != ReadFormat.Raw && !json)
            {
                await error.WriteLineAsync($"Stream '{stream}' is {metadata?.ContentType ?? "untyped"}, not JSON: --output {OutputOption.NameOf(outputFormat)} needs a JSON stream.");
                return ExitCodes.Error;
            }

            long? start = offset == ProtocolQuery.BeginningSentinel ? 0 : StreamOffset.TryParse(offset, out var from) ? from.Position : null;
            if (progress is not null && start is { } position && StreamOffset.TryParse(metadata?.NextOffset, out var tail))
            {
                progress.Total = tail.Position - position;
            }

            var output = new ReadOutput(_client.Console.OpenStandardOutput(), format, json, maxBytes, maxMessages, offset);
            var interrupted = false;
            DurableStreamException? failure = null;
            try
            {
                await foreach (var chunk in client.ReadAsync(stream, options, token))
                {
                    await output.WriteAsync(chunk.Data, chunk.NextOffset, token);
                    progress?.Report(output.Bytes);
                    if (output.LimitReached)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Ctrl+C ends a read normally.
                interrupted = true;
            }
            catch (DurableStreamException ex)
            {
                // Given up (the retry budget ran out) or ended by an error the server gave: say where to resume.
                failure = ex;
            }
            finally
            {
                progress?.Complete();
            }

            await output.CompleteAsync(CancellationToken.None);
            if (failure is not null)
            {
                var exitCode = await ClientOptions.ReportAsync(parseResult, stream, client, failure);
                // Below the retained start the error line already says where to restart; resuming there would fail again.
                if ((follow || output.Offset is not null) && failure.ErrorCode != DurableStreamErrorCode.BeforeRetainedStart)
                {
                    var resume = output.Offset ?? failure.ResumeOffset ?? offset;
                    await error.WriteLineAsync($"Stopped at offset {resume}; resume with --offset {resume}.");
                }

                return exitCode;
            }
            if (printOffset && output.Offset is not null)
            {
                await error.WriteLineAsync(output.Offset);
            }
            else if (interrupted)
            {
                await error.WriteLineAsync(output.Offset is { } reached
                    ? $"Stopped at offset {reached}; resume with --offset {reached}."
                    : $"Stopped before any data arrived; resume with --offset {offset}.");
            }

            return ExitCodes.Success;
        }, token);
    }
}
