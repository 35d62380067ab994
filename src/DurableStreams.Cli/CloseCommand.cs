using System.CommandLine;

namespace DurableStreams.Cli;

/// <summary>The <c>close</c> command: closes a stream to further appends; reading it still works.</summary>
internal sealed class CloseCommand
{
    private readonly Argument<string> _stream = ClientOptions.CreateStreamArgument();

    public CloseCommand(ClientOptions client)
    {
        Command = new Command("close", "Close a stream: appends are refused from now on, readers see its end.") { _stream };
        Command.SetAction((parseResult, cancellationToken) =>
        {
            var stream = parseResult.GetRequiredValue(_stream);
            return client.RunAsync(parseResult, stream, async c =>
            {
                await c.CloseAsync(stream, cancellationToken);
                return ExitCodes.Success;
            }, cancellationToken);
        });
    }

    public Command Command { get; }
}
