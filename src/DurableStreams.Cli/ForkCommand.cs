using System.CommandLine;
using DurableStreams.Client;

namespace DurableStreams.Cli;

/// <summary>The <c>fork</c> command: creates a stream as a fork of another (create --fork-from).</summary>
internal sealed class ForkCommand
{
    private readonly Argument<string> _source = ClientOptions.CreateStreamArgument("source", "The stream to fork.");
    private readonly Argument<string> _target = ClientOptions.CreateStreamArgument("target", "The new stream: it shares the source's data up to --offset, then has its own.");

    private readonly Option<string?> _offset = new("--offset")
    {
        Description = "Where the fork diverges from the source: an offset printed by --print-offset (default: the source's tail).",
        HelpName = "offset",
    };

    private readonly Option<string?> _output = OutputOption.CreateResult("fork", CreateCommand.ResultFields);

    public ForkCommand(ClientOptions client)
    {
        Command = new Command("fork", "Create a stream as a fork of another: same content type, the source's data up to --offset, then its own appends.")
        {
            _source,
            _target,
            _offset,
            _output,
        };
        Command.SetAction((parseResult, cancellationToken) =>
        {
            var source = parseResult.GetRequiredValue(_source);
            var target = parseResult.GetRequiredValue(_target);
            return client.RunAsync(parseResult, source, async c =>
            {
                StreamInfo created;
                try
                {
                    created = await c.CreateAsync(target, new CreateStreamOptions { ForkFrom = source, ForkOffset = parseResult.GetValue(_offset) }, cancellationToken);
                }
                catch (DurableStreamException ex) when (ex.ErrorCode == DurableStreamErrorCode.Conflict)
                {
                    // The 409 is about the target, not the source the other errors name.
                    await parseResult.InvocationConfiguration.Error.WriteLineAsync(
                        $"Stream '{target}' already exists and is not this fork of '{source}'; nothing was changed. Fork onto a new name, or delete '{target}' first.");
                    return ExitCodes.Conflict;
                }

                await parseResult.InvocationConfiguration.Error.WriteLineAsync(CreateCommand.CreatedMessage(created, target));
                if (parseResult.GetValue(_output) is not null)
                {
                    await CreateCommand.WriteResultAsync(parseResult.InvocationConfiguration.Output, created, target);
                }

                return ExitCodes.Success;
            }, cancellationToken);
        });
    }

    public Command Command { get; }
}
