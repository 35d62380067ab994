using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace DurableStreams.Cli;

/// <summary>
/// The tool's <c>--help</c>: System.CommandLine's help followed by an "Examples:" section for the command, and for
/// <c>serve</c> without the client options (<c>--url</c>, <c>--auth</c>, ...), which are recursive on the root command
/// so that they can go anywhere on a client command's line but mean nothing to a server.
/// </summary>
internal sealed class CommandHelp : SynchronousCommandLineAction
{
    /// <summary>Two or three example lines per command, keyed by the command's name (the root command: empty).</summary>
    internal static readonly IReadOnlyDictionary<string, string[]> Examples = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        [""] =
        [
            "durable-streams serve --registry",
            "durable-streams create events --json && durable-streams follow events -o jsonl",
            "durable-streams ls -o json --url http://host:4437",
        ],
        ["serve"] =
        [
            "durable-streams serve --data-dir ./data --port 4437",
            "durable-streams serve --memory --registry --port 0",
            "durable-streams serve --tls-cert cert.pem --tls-key key.pem --host 0.0.0.0",
        ],
        ["create"] =
        [
            "durable-streams create events --json",
            "durable-streams create logs --content-type text/plain --ttl 1h 'first line'",
            "durable-streams create copy --fork-from events",
        ],
        ["append"] =
        [
            "durable-streams append logs 'one more line'",
            "tail -f app.log | durable-streams append logs --lines",
            "durable-streams append events --file batch.json --producer importer --epoch 2",
        ],
        ["read"] =
        [
            "durable-streams read logs > logs.txt",
            "durable-streams read events -o jsonl --max-messages 10 --print-offset",
            "durable-streams read events --offset now -f",
        ],
        ["follow"] =
        [
            "durable-streams follow logs",
            "durable-streams follow events -o jsonl --offset now",
            "durable-streams follow events --live sse --retry-for 5m",
        ],
        ["head"] =
        [
            "durable-streams head events",
            "durable-streams info events -o json",
        ],
        ["fork"] =
        [
            "durable-streams fork events events-v2",
            "durable-streams fork events replay --offset 0000000000000000_0000000000001000",
        ],
        ["close"] =
        [
            "durable-streams close events",
            "durable-streams close http://host:4437/v1/stream/events",
        ],
        ["compact"] =
        [
            "durable-streams compact state/users",
            "durable-streams compact state/users -o json --auth 'Bearer <admin token>'",
        ],
        ["delete"] =
        [
            "durable-streams delete events",
            "durable-streams delete old --url http://host:4437 --auth 'Bearer <token>'",
        ],
        ["ls"] =
        [
            "durable-streams ls",
            "durable-streams ls orders/ -o table",
            "durable-streams ls -o jsonl",
        ],
        ["open"] =
        [
            "durable-streams open events",
            "durable-streams open events --live --no-browser",
        ],
        ["completion"] =
        [
            "source <(durable-streams completion bash)",
            "durable-streams completion zsh >> ~/.zshrc",
            "durable-streams completion pwsh | Out-String | Invoke-Expression",
        ],
    };

    private readonly HelpAction _help;
    private readonly Command _serve;
    private readonly IReadOnlyList<Option> _clientOptions;

    /// <param name="help">System.CommandLine's help action, which writes the usage, arguments, options and commands.</param>
    /// <param name="serve">The <c>serve</c> command, whose help leaves out <paramref name="clientOptions"/>.</param>
    /// <param name="clientOptions">The options only the client commands use.</param>
    public CommandHelp(HelpAction help, Command serve, IReadOnlyList<Option> clientOptions)
    {
        _help = help;
        _serve = serve;
        _clientOptions = clientOptions;
    }

    public override bool ClearsParseErrors => true;

    public override int Invoke(ParseResult parseResult)
    {
        var command = parseResult.CommandResult.Command;
        var hidden = command == _serve ? _clientOptions.Where(o => !o.Hidden).ToArray() : [];
        foreach (var option in hidden)
        {
            option.Hidden = true;
        }

        try
        {
            _help.Invoke(parseResult);
        }
        finally
        {
            foreach (var option in hidden)
            {
                option.Hidden = false;
            }
        }

        if (Examples.TryGetValue(command.Parents.Any() ? command.Name : string.Empty, out var examples))
        {
            var output = parseResult.InvocationConfiguration.Output;
            output.WriteLine("Examples:");
            foreach (var example in examples)
            {
                output.WriteLine("  " + example);
            }

            output.WriteLine();
        }

        return ExitCodes.Success;
    }
}
