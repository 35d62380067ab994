using System.CommandLine;
using DurableStreams.Client;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>read</c> command: writes a stream's bytes to standard output, catching up to the tail and exiting, or with
/// <c>--follow</c> tailing it until it is closed or Ctrl+C.
/// </summary>
internal sealed class ReadCommand
{
    private static readonly (string Name, LiveMode Mode)[] s_liveNames = [("long-poll", LiveMode.LongPoll), ("sse", LiveMode.Sse)];

    private readonly ClientOptions _client;
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    private readonly Option<string> _offset = new("--offset")
    {
        Description = "Where to start: -1 (the beginning), now (the tail) or an offset printed by --print-offset (default: -1).",
        HelpName = "offset",
        DefaultValueFactory = _ => "-1",
    };

    private readonly Option<bool> _follow = new("--follow", "-f")
    {
        Description = "Keep reading new data until the stream is closed or Ctrl+C.",
    };

    private readonly Option<string> _live = new("--live")
    {
        Description = "How --follow waits for new data (default: long-poll).",
        DefaultValueFactory = _ => "long-poll",
    };

    private readonly Option<string> _format = new("--format")
    {
        Description = "raw = the bytes as stored (a JSON stream's batches as JSON arrays); jsonl = one JSON message per line, for JSON streams (default: raw).",
        DefaultValueFactory = _ => "raw",
    };

    private readonly Option<bool> _printOffset = new("--print-offset")
    {
        Description = "At the end, write the offset to resume from to standard error.",
    };

    public ReadCommand(ClientOptions client)
    {
        _client = client;
        _live.AcceptOnlyFromAmong([.. s_liveNames.Select(n => n.Name)]);
        _format.AcceptOnlyFromAmong("raw", "jsonl");
        _offset.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string>()))
            {
                result.AddError("Invalid value '' for --offset: expected -1, now or an offset.");
            }
        });
        Command = new Command("read", "Write a stream's data to standard output.")
        {
            _stream,
            _offset,
            _follow,
            _live,
            _format,
            _printOffset,
        };
        Command.Validators.Add(result =>
        {
            if (result.GetResult(_live) is { Implicit: false } && result.GetResult(_follow) is null)
            {
                result.AddError("--live applies only with --follow.");
            }
        });
        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    private async Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var stream = parseResult.GetRequiredValue(_stream);
        var follow = parseResult.GetValue(_follow);

        // As in serve: when this invocation owns process termination, Ctrl+C and SIGTERM end a follow gracefully (exit 0).
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var signals = follow && parseResult.InvocationConfiguration.ProcessTerminationTimeout is not null
            ? new TerminationSignalHandler(stopping)
            : null;
        var token = stopping.Token;

        var options = new ReadOptions
        {
            Offset = parseResult.GetRequiredValue(_offset),
            Live = follow ? s_liveNames.First(n => n.Name == parseResult.GetRequiredValue(_live)).Mode : LiveMode.None,
        };
        var jsonLines = parseResult.GetRequiredValue(_format) == "jsonl";
        var error = parseResult.InvocationConfiguration.Error;

        return await _client.RunAsync(parseResult, stream, async client =>
        {
            string? nextOffset = null;
            var output = _client.Console.OpenStandardOutput();
            try
            {
                await foreach (var chunk in client.ReadAsync(stream, options, token))
                {
                    await WriteAsync(output, chunk.Data, jsonLines, token);
                    nextOffset = chunk.NextOffset;
                }
            }
            catch (OperationCanceledException) when (follow && token.IsCancellationRequested)
            {
                // Ctrl+C ends a follow normally.
            }

            if (parseResult.GetValue(_printOffset) && nextOffset is not null)
            {
                await error.WriteLineAsync(nextOffset);
            }

            return ExitCodes.Success;
        }, token);
    }

    private static async Task WriteAsync(Stream output, ReadOnlyMemory<byte> data, bool jsonLines, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
        {
            return;
        }

        if (jsonLines)
        {
            using var buffer = new MemoryStream();
            foreach (var message in DurableStreamClient.JsonMessages(data))
            {
                using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
                {
                    message.WriteTo(writer);
                }

                buffer.WriteByte((byte)'\n');
            }

            await output.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancellationToken);
        }
        else
        {
            await output.WriteAsync(data, cancellationToken);
        }

        // Each chunk is flushed so a pipe or a terminal sees followed data as it arrives.
        await output.FlushAsync(cancellationToken);
    }
}
