using System.Buffers;
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DurableStreams.Client;
using DurableStreams.Protocol;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>append</c> command (alias <c>write</c>): appends an argument, a file or standard input to a stream, as one
/// message or (<c>--lines</c>) one message per line, plainly or through an idempotent producer (<c>--producer</c>).
/// </summary>
internal sealed class AppendCommand
{
    /// <summary>With <c>--lines</c> and no producer, lines are sent in POSTs of about this many bytes (or fewer when input pauses).</summary>
    public const int LineBatchBytes = 1024 * 1024;

    /// <summary>Without <c>--lines</c>, a producer sends non-JSON input in messages of this size (the stream sees the same bytes).</summary>
    private const int ProducerChunkBytes = 256 * 1024;

    private readonly ClientOptions _client;
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    private readonly Argument<string?> _content = new("content")
    {
        Description = "The content to append, as UTF-8 text (default: --file, else standard input, streamed).",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private readonly Option<string?> _file = new("--file")
    {
        Description = "Append the content of this file.",
        HelpName = "path",
    };

    private readonly Option<string?> _contentType;
    private readonly Option<bool> _json;

    private readonly Option<bool> _lines = new("--lines")
    {
        Description = "Append each line as its own message, in batches. On a JSON stream each non-blank line must be one JSON value "
            + "(checked before sending); on other streams each line is appended with its newline.",
    };

    private readonly Option<string?> _producer = new("--producer")
    {
        Description = "Append through an idempotent producer with this id: batches are pipelined and retried without duplicates "
            + "(exactly once). The server remembers each (id, epoch)'s last batch, so give every new run a higher --epoch.",
        HelpName = "id",
    };

    private readonly Option<long> _epoch = new("--epoch")
    {
        Description = "The producer's epoch (default 0); a newer epoch on the server is claimed automatically (epoch + 1).",
        HelpName = "epoch",
        DefaultValueFactory = _ => 0,
    };

    private readonly Option<bool> _allowReplay = new("--allow-replay")
    {
        Description = "With --producer: accept a run the server takes as a replay of an earlier one (same id and epoch), "
            + "whose batches it already has and does not append again; without it such a run warns and exits 4.",
    };

    private readonly Option<bool> _close = new("--close")
    {
        Description = "Close the stream after the last append (atomically with it when possible).",
    };

    private readonly Option<string?> _seq = new("--seq")
    {
        Description = "Writer sequence (Stream-Seq); the server rejects a value not greater than the last one with a conflict. "
            + "Not with --lines or --producer.",
        HelpName = "seq",
    };

    private readonly Option<bool> _printOffset = new("--print-offset")
    {
        Description = "Write the stream's new tail offset to standard error.",
    };

    private readonly Option<string?> _output = OutputOption.CreateResult("append", "stream, nextOffset: the new tail offset");

    public AppendCommand(ClientOptions client)
    {
        _client = client;
        (_contentType, _json) = ClientOptions.CreateContentTypeOptions("The content type of the append (default: the stream's, from a HEAD request).");
        Command = new Command("append", "Append data to a stream from an argument, --file or standard input.")
        {
            _stream,
            _content,
            _file,
            _contentType,
            _json,
            _lines,
            _producer,
            _epoch,
            _allowReplay,
            _close,
            _seq,
            _printOffset,
            _output,
        };
        Command.Aliases.Add("write");
        ClientOptions.AddExclusive(Command, _contentType, _json);
        ClientOptions.AddExclusive(Command, _seq, _lines);
        ClientOptions.AddExclusive(Command, _seq, _producer);
        _epoch.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<long>() < 0)
            {
                result.AddError("Invalid value for --epoch: expected a whole number of at least 0.");
            }
        });
        _producer.Validators.Add(result =>
        {
            if (string.IsNullOrWhiteSpace(result.GetValueOrDefault<string?>()))
            {
                result.AddError("Invalid value '' for --producer: expected a producer id.");
            }
        });
        Command.Validators.Add(result =>
        {
            if (result.GetResult(_content) is { Tokens.Count: > 0 } && result.GetResult(_file) is not null)
            {
                result.AddError("Give the content either as an argument or with --file, not both.");
            }

            if (result.GetResult(_epoch) is { Implicit: false } && result.GetResult(_producer) is null)
            {
                result.AddError("--epoch applies only with --producer.");
            }

            if (result.GetResult(_allowReplay) is { Implicit: false } && result.GetResult(_producer) is null)
            {
                result.AddError("--allow-replay applies only with --producer.");
            }
        });
        Command.SetAction(RunAsync);
    }

    public Command Command { get; }

    private Task<int> RunAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var stream = parseResult.GetRequiredValue(_stream);
        return _client.RunAsync(parseResult, stream, async client =>
        {
            var contentType = ClientOptions.ContentTypeOf(parseResult, _json, _contentType)
                ?? (await client.GetMetadataAsync(stream, cancellationToken)).ContentType
                ?? ContentTypes.Default;
            var close = parseResult.GetValue(_close);
            var file = parseResult.GetValue(_file);
            var content = parseResult.GetValue(_content);
            await using var source = content is not null
                ? new MemoryStream(Encoding.UTF8.GetBytes(content), writable: false)
                : file is null ? await OpenStandardInputAsync(parseResult, cancellationToken) : File.OpenRead(file);
            var progress = _client.CreateProgressBar(parseResult, "Uploading", file is null ? null : source.Length);
            var input = progress.Enabled ? new ProgressStream(source, progress) : source;

            string? nextOffset;
            try
            {
                if (parseResult.GetValue(_producer) is { } producerId)
                {
                    await using var producer = client.CreateProducer(stream, producerId, parseResult.GetValue(_epoch), contentType);
                    await (parseResult.GetValue(_lines)
                        ? ForEachLineAsync(input, contentType, passPauses: false, line => producer.AppendAsync(line, cancellationToken).AsTask(), cancellationToken)
                        : AppendWholeAsync(input, contentType, producer, cancellationToken));
                    await producer.CloseAsync(closeStream: close, cancellationToken);
                    nextOffset = producer.NextOffset;
                    if (producer.ReplayedBatches > 0)
                    {
                        var replayed = producer.ReplayedBatches.ToString(CultureInfo.InvariantCulture);
                        var allowed = parseResult.GetValue(_allowReplay);
                        await parseResult.InvocationConfiguration.Error.WriteLineAsync(
                            $"{(allowed ? "Note" : "Warning")}: the server already had {replayed} batch(es) of this run from an earlier run of producer '{producerId}' at epoch {producer.Epoch.ToString(CultureInfo.InvariantCulture)}, "
                            + "so their data was not appended again. Give each run a higher --epoch (or a new --producer id)"
                            + (allowed ? "." : ", or pass --allow-replay to accept a replay."));
                        if (!allowed)
                        {
                            return ExitCodes.Conflict;
                        }
                    }
                }
                else if (parseResult.GetValue(_lines))
                {
                    // A pipe may pause between lines (tail -f | append --lines): send what has arrived. A file never does.
                    nextOffset = await AppendLineBatchesAsync(client, stream, input, contentType, close, flushOnPause: file is null, cancellationToken);
                }
                else
                {
                    var options = new AppendOptions { Close = close, StreamSeq = parseResult.GetValue(_seq) };
                    nextOffset = (await client.AppendAsync(stream, input, contentType, options, cancellationToken)).NextOffset;
                }
            }
            catch (InvalidLineException ex)
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync(ex.Message);
                return ExitCodes.Error;
            }
            finally
            {
                progress.Complete();
            }

            if (parseResult.GetValue(_printOffset) && nextOffset is not null)
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync(nextOffset);
            }

            if (parseResult.GetValue(_output) is not null)
            {
                await OutputOption.WriteObjectAsync(parseResult.InvocationConfiguration.Output, json =>
                {
                    json.WriteString("stream", stream);
                    json.WriteString("nextOffset", nextOffset);
                });
            }

            return ExitCodes.Success;
        }, cancellationToken);
    }

    /// <summary>
    /// <c>--lines</c> without a producer: lines are gathered into POSTs of up to <see cref="LineBatchBytes"/> (a JSON
    /// array on a JSON stream, the lines' bytes otherwise), sent early when the input pauses. The last POST carries
    /// <c>--close</c>; with no lines left for it, the stream is closed on its own.
    /// </summary>
    private static async Task<string?> AppendLineBatchesAsync(
        DurableStreamClient client,
        string stream,
        Stream input,
        string contentType,
        bool close,
        bool flushOnPause,
        CancellationToken cancellationToken)
    {
        var json = ContentTypes.IsJson(contentType);
        var batch = new ArrayBufferWriter<byte>();
        var lines = 0;
        string? nextOffset = null;

        async Task SendAsync(bool last)
        {
            if (json)
            {
                batch.Write("]"u8);
            }

            var result = await client.AppendAsync(stream, batch.WrittenMemory.ToArray(), contentType, new AppendOptions { Close = last && close }, cancellationToken);
            nextOffset = result.NextOffset;
            batch.ResetWrittenCount();
            lines = 0;
        }

        // The batch is sent once the next line shows it is full, or the input pauses; the final batch waits for the end of input.
        try
        {
            await ForEachLineAsync(input, contentType, passPauses: true, async line =>
            {
                if (line.IsEmpty)
                {
                    if (flushOnPause && lines > 0)
                    {
                        await SendAsync(last: false);
                    }

                    return;
                }

                // A JSON batch also needs a separator (or '[') and the closing ']'.
                if (lines > 0 && batch.WrittenCount + line.Length + (json ? 2 : 0) > LineBatchBytes)
                {
                    await SendAsync(last: false);
                }

                batch.Write(json ? (lines == 0 ? "["u8 : ","u8) : []);
                batch.Write(line.Span);
                lines++;
            }, cancellationToken);
        }
        catch (InvalidLineException) when (lines > 0)
        {
            // Everything before the bad line goes in, as the message says.
            await SendAsync(last: false);
            throw;
        }

        if (lines > 0)
        {
            await SendAsync(last: true);
        }
        else if (close)
        {
            nextOffset = (await client.CloseAsync(stream, cancellationToken)).NextOffset;
        }

        return nextOffset;
    }

    /// <summary>
    /// Reads <paramref name="input"/> line by line and hands each line to <paramref name="handle"/>: on a JSON stream the
    /// line without its line break, checked to be one JSON value (blank lines are skipped); otherwise the line as read.
    /// With <paramref name="passPauses"/>, an empty line marks a pause in the input.
    /// </summary>
    private static async Task ForEachLineAsync(Stream input, string contentType, bool passPauses, Func<ReadOnlyMemory<byte>, Task> handle, CancellationToken cancellationToken)
    {
        var json = ContentTypes.IsJson(contentType);
        var number = 0;
        await foreach (var line in new LineReader(input).ReadLinesAsync(cancellationToken))
        {
            if (line.IsEmpty)
            {
                if (passPauses)
                {
                    await handle(line);
                }

                continue;
            }

            number++;
            if (!json)
            {
                await handle(line);
                continue;
            }

            var value = Trim(line);
            if (value.IsEmpty)
            {
                continue;
            }

            if (!IsOneJsonValue(value.Span, out var problem))
            {
                throw new InvalidLineException($"Line {number.ToString(CultureInfo.InvariantCulture)} is not one JSON value: {problem} The lines before it were appended; this one and the rest were not.");
            }

            await handle(value);
        }
    }

    /// <summary>
    /// A producer without <c>--lines</c>: a JSON stream gets the whole input as one message (sent as a batch, so an array
    /// is flattened one level as with a plain append); other streams get the input in chunks, which the stream
    /// concatenates into the same bytes.
    /// </summary>
    private static async Task AppendWholeAsync(Stream input, string contentType, IdempotentProducer producer, CancellationToken cancellationToken)
    {
        if (ContentTypes.IsJson(contentType))
        {
            using var whole = new MemoryStream();
            await input.CopyToAsync(whole, cancellationToken);
            var text = Trim(whole.GetBuffer().AsMemory(0, (int)whole.Length));
            if (!IsOneJsonValue(text.Span, out var problem, singleLine: false))
            {
                throw new InvalidLineException($"The input is not one JSON value: {problem}");
            }

            await producer.AppendAsync(text, cancellationToken);
            return;
        }

        var buffer = new byte[ProducerChunkBytes];
        int read;
        while ((read = await input.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken)) > 0)
        {
            await producer.AppendAsync(buffer.AsMemory(0, read), cancellationToken);
        }
    }

    private static ReadOnlyMemory<byte> Trim(ReadOnlyMemory<byte> line)
    {
        var span = line.Span;
        var start = 0;
        var end = span.Length;
        while (start < end && IsWhiteSpace(span[start]))
        {
            start++;
        }

        while (end > start && IsWhiteSpace(span[end - 1]))
        {
            end--;
        }

        return line[start..end];

        static bool IsWhiteSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';
    }

    /// <summary>
    /// Standard input; on a terminal, after a line on stderr saying so (a user who typed <c>append s</c> without content
    /// otherwise sees nothing happen), and wrapped so Ctrl+C ends a pending read at once (a terminal read ignores the token).
    /// </summary>
    private async Task<Stream> OpenStandardInputAsync(ParseResult parseResult, CancellationToken cancellationToken)
    {
        var input = _client.Console.OpenStandardInput();
        if (!_client.Console.IsInputTerminal())
        {
            return input;
        }

        await parseResult.InvocationConfiguration.Error.WriteLineAsync(
            "Reading the content from standard input; end it with Ctrl+D (Ctrl+Z then Enter on Windows), or Ctrl+C to cancel.".AsMemory(), cancellationToken);
        return new TerminalInputStream(input, cancellationToken);
    }

    private static bool IsOneJsonValue(ReadOnlySpan<byte> text, out string problem, bool singleLine = true)
    {
        problem = string.Empty;
        try
        {
            var reader = new Utf8JsonReader(text);
            if (!reader.Read())
            {
                problem = "it is empty.";
                return false;
            }

            reader.Skip();
            if (reader.Read())
            {
                problem = "it holds more than one value.";
                return false;
            }

            return true;
        }
        catch (JsonException ex)
        {
            problem = JsonErrorText.Describe(ex, singleLine);
            return false;
        }
    }

    /// <summary>Input that cannot be appended as asked; reported as one line, exit code 1.</summary>
    private sealed class InvalidLineException(string message) : Exception(message);
}
