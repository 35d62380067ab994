using System.CommandLine;

namespace DurableStreams.Cli;

/// <summary>Builds the <c>durable-streams</c> command tree.</summary>
internal sealed class CommandFactory
{
    /// <param name="console">Raw standard input/output and the environment for the client commands; the real process by default.</param>
    public CommandFactory(ClientConsole? console = null)
    {
        Serve = new ServeCommand((console ?? ClientConsole.System).GetEnvironmentVariable);
        Client = new ClientOptions(console ?? ClientConsole.System);
    }

    public ServeCommand Serve { get; }

    /// <summary>The options shared by the client commands.</summary>
    public ClientOptions Client { get; }

    public RootCommand CreateRootCommand()
    {
        var root = new RootCommand("Durable Streams server and command-line client.")
        {
            Serve.Command,
            new CreateCommand(Client).Command,
            new AppendCommand(Client).Command,
            new ReadCommand(Client).Command,
            new ReadCommand(Client, alwaysFollow: true).Command,
            new HeadCommand(Client).Command,
            new ForkCommand(Client).Command,
            new CloseCommand(Client).Command,
            new CompactCommand(Client).Command,
            new DeleteCommand(Client).Command,
            new ListCommand(Client).Command,
            new OpenCommand(Client).Command,
            new CompletionCommand().Command,
            Client.Url,
            Client.StreamsPath,
            Client.Auth,
            Client.Timeout,
            Client.Verbose,
        };
        var help = root.Options.OfType<System.CommandLine.Help.HelpOption>().Single();
        if (help.Action is System.CommandLine.Help.HelpAction standard)
        {
            help.Action = new CommandHelp(standard, Serve.Command, [Client.Url, Client.StreamsPath, Client.Auth, Client.Timeout, Client.Verbose]);
        }

        // Stream names complete from the server's registry: every argument or option that names an existing stream
        // (not fork's new target).
        foreach (var command in root.Subcommands.Where(c => c != Serve.Command))
        {
            foreach (var argument in command.Arguments.Where(a => a.Name is "stream" or "source" or "prefix"))
            {
                argument.CompletionSources.Add(Client.CompleteStreamNames);
            }

            foreach (var option in command.Options.Where(o => o.Name == "--fork-from"))
            {
                option.CompletionSources.Add(Client.CompleteStreamNames);
            }
        }

        return root;
    }
}
