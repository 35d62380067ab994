using System.CommandLine;
using System.Text;
using DurableStreams.Client;
using DurableStreams.Protocol;

namespace DurableStreams.Cli;

/// <summary>The <c>append</c> command (alias <c>write</c>): appends an argument, a file or standard input to a stream.</summary>
internal sealed class AppendCommand
{
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

    private readonly Option<bool> _close = new("--close")
    {
        Description = "Close the stream atomically after this append.",
    };

    private readonly Option<string?> _seq = new("--seq")
    {
        Description = "Writer sequence (Stream-Seq); the server rejects a value not greater than the last one with a conflict.",
        HelpName = "seq",
    };

    private readonly Option<bool> _printOffset = new("--print-offset")
    {
        Description = "Write the stream's new tail offset to standard error.",
    };

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
            _close,
            _seq,
            _printOffset,
        };
        Command.Aliases.Add("write");
        ClientOptions.AddExclusive(Command, _contentType, _json);
        Command.Validators.Add(result =>
        {
            if (result.GetResult(_content) is { Tokens.Count: > 0 } && result.GetResult(_file) is not null)
            {
                result.AddError("Give the content either as an argument or with --file, not both.");
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
            var options = new AppendOptions { Close = parseResult.GetValue(_close), StreamSeq = parseResult.GetValue(_seq) };

            AppendResult result;
            if (parseResult.GetValue(_content) is { } content)
            {
                result = await client.AppendAsync(stream, Encoding.UTF8.GetBytes(content), contentType, options, cancellationToken);
            }
            else
            {
                var file = parseResult.GetValue(_file);
                await using var body = file is null ? _client.Console.OpenStandardInput() : File.OpenRead(file);
                result = await client.AppendAsync(stream, body, contentType, options, cancellationToken);
            }

            if (parseResult.GetValue(_printOffset))
            {
                await parseResult.InvocationConfiguration.Error.WriteLineAsync(result.NextOffset);
            }

            return ExitCodes.Success;
        }, cancellationToken);
    }
}
