using System.CommandLine;

namespace DurableStreams.Cli;

/// <summary>The <c>delete</c> command: deletes a stream and its data.</summary>
internal sealed class DeleteCommand
{
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    public DeleteCommand(ClientOptions client)
    {
        Command = new Command("delete", "Delete a stream and its data.") { _stream };
        Command.SetAction((parseResult, cancellationToken) =>
        {
            var stream = parseResult.GetRequiredValue(_stream);
            return client.RunAsync(parseResult, stream, async c =>
            {
                await c.DeleteAsync(stream, cancellationToken);
                return ExitCodes.Success;
            }, cancellationToken);
        });
    }

    public Command Command { get; }
}
