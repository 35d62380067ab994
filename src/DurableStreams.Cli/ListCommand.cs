using System.CommandLine;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>ls</c> command. Listing streams needs the stream registry, which the server does not have yet (a later
/// issue), so it explains that on standard error and exits with <see cref="ExitCodes.Error"/>.
/// </summary>
internal sealed class ListCommand
{
    public const string NotAvailableMessage = "ls: listing streams needs the stream registry, which this server does not have yet; use head <stream> to check one stream.";

    public ListCommand()
    {
        Command = new Command("ls", "List streams (not available yet: needs the stream registry).");
        Command.SetAction(async (parseResult, _) =>
        {
            await parseResult.InvocationConfiguration.Error.WriteLineAsync(NotAvailableMessage);
            return ExitCodes.Error;
        });
    }

    public Command Command { get; }
}
