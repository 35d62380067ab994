using System.CommandLine;
using System.Globalization;
using DurableStreams.Client;

namespace DurableStreams.Cli;

/// <summary>The <c>create</c> command: creates a stream (PUT), optionally with content, an expiry, closed, or as a fork.</summary>
internal sealed class CreateCommand
{
    private readonly ClientOptions _client;
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    private readonly Argument<string?> _content = new("content")
    {
        Description = "Initial content, as UTF-8 text.",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private readonly Option<string?> _file = new("--file")
    {
        Description = "Read the initial content from this file.",
        HelpName = "path",
    };

    private readonly Option<string?> _contentType;
    private readonly Option<bool> _json;

    private readonly Option<TimeSpan?> _ttl = new("--ttl")
    {
        Description = "Sliding time-to-live, in whole seconds. Examples: 30s, 10m, 1h.",
        HelpName = "duration",
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
            if (!DurationParser.TryParse(text, out var duration) || duration <= TimeSpan.Zero || duration.Ticks % TimeSpan.TicksPerSecond != 0)
            {
                result.AddError($"Invalid value '{text}' for --ttl: expected a whole number of seconds greater than zero, as {DurationParser.ExpectedFormat}.");
                return null;
            }

            return duration;
        },
    };

    private readonly Option<DateTimeOffset?> _expiresAt = new("--expires-at")
    {
        Description = "Absolute expiry as an RFC 3339 timestamp, for example 2030-01-01T00:00:00Z.",
        HelpName = "timestamp",
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : string.Empty;
            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
            {
                result.AddError($"Invalid value '{text}' for --expires-at: expected an RFC 3339 timestamp such as 2030-01-01T00:00:00Z.");
                return null;
            }

            return at;
        },
    };

    private readonly Option<bool> _closed = new("--closed")
    {
        Description = "Create the stream already closed; its initial content is then all it will ever hold.",
    };

    private readonly Option<string?> _forkFrom = new("--fork-from")
    {
        Description = "Create the stream as a fork of this stream, sharing its data up to --fork-offset.",
        HelpName = "stream",
    };

    private readonly Option<string?> _forkOffset = new("--fork-offset")
    {
        Description = "Where the fork diverges from --fork-from (default: the source's tail).",
        HelpName = "offset",
    };

    private readonly Option<string?> _output = OutputOption.CreateResult("create", ResultFields);

    /// <summary>The fields of create's and fork's <c>-o json</c> result.</summary>
    internal const string ResultFields = "stream, outcome: created or existed, contentType, nextOffset, closed";

    public CreateCommand(ClientOptions client)
    {
        _client = client;
        (_contentType, _json) = ClientOptions.CreateContentTypeOptions("The stream's content type (default: application/octet-stream, or a fork's source's).");
        Command = new Command("create", "Create a stream; succeeds quietly if one with the same settings exists.")
        {
            _stream,
            _content,
            _file,
            _contentType,
            _json,
            _ttl,
            _expiresAt,
            _closed,
            _forkFrom,
            _forkOffset,
            _output,
        };
        ClientOptions.AddExclusive(Command, _contentType, _json);
        ClientOptions.AddExclusive(Command, _ttl, _expiresAt);
        Command.Validators.Add(result =>
        {
            if (result.GetResult(_content) is { Tokens.Count: > 0 } && result.GetResult(_file) is not null)
            {
                result.AddError("Give the initial content either as an argument or with --file, not both.");
            }

            if (result.GetResult(_forkOffset) is not null && result.GetResult(_forkFrom) is null)
            {
                result.AddError("--fork-offset applies only with --fork-from.");
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
            var file = parseResult.GetValue(_file);
            await using var body = file is null ? null : File.OpenRead(file);
            var content = parseResult.GetValue(_content);
            var created = await client.CreateAsync(
                stream,
                new CreateStreamOptions
                {
                    ContentType = ClientOptions.ContentTypeOf(parseResult, _json, _contentType),
                    Ttl = parseResult.GetValue(_ttl),
                    ExpiresAt = parseResult.GetValue(_expiresAt),
                    Closed = parseResult.GetValue(_closed),
                    Body = content is null ? ReadOnlyMemory<byte>.Empty : System.Text.Encoding.UTF8.GetBytes(content),
                    BodyStream = body,
                    ForkFrom = parseResult.GetValue(_forkFrom),
                    ForkOffset = parseResult.GetValue(_forkOffset),
                },
                cancellationToken);
            await parseResult.InvocationConfiguration.Error.WriteLineAsync(CreatedMessage(created, stream));
            if (parseResult.GetValue(_output) is not null)
            {
                await WriteResultAsync(parseResult.InvocationConfiguration.Output, created, stream);
            }

            return ExitCodes.Success;
        }, cancellationToken);
    }

    /// <summary>The <c>-o json</c> result of create and fork: one JSON object on one line.</summary>
    public static Task WriteResultAsync(TextWriter output, StreamInfo created, string stream) => OutputOption.WriteObjectAsync(output, json =>
    {
        json.WriteString("stream", stream);
        json.WriteString("outcome", created.Outcome == CreateOutcome.Created ? "created" : "existed");
        json.WriteString("contentType", created.ContentType);
        json.WriteString("nextOffset", created.NextOffset);
        json.WriteBoolean("closed", created.Closed);
    });

    /// <summary>
    /// The stderr line saying whether a create made the stream or found it (an identical re-create succeeds and changes
    /// nothing); shared with <c>fork</c>.
    /// </summary>
    public static string CreatedMessage(StreamInfo created, string stream) => created.Outcome == CreateOutcome.Created
        ? $"Created stream '{stream}'."
        : $"Stream '{stream}' already exists with these settings; nothing was changed.";
}
