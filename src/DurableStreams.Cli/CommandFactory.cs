using System.CommandLine;

namespace DurableStreams.Cli;

/// <summary>Builds the <c>durable-streams</c> command tree.</summary>
internal sealed class CommandFactory
{
    public CommandFactory()
    {
        Serve = new ServeCommand();
    }

    public ServeCommand Serve { get; }

    public RootCommand CreateRootCommand() => new("Durable Streams server and command-line client.")
    {
        Serve.Command,
    };
}
