using System.CommandLine;
using System.CommandLine.Invocation;

namespace DurableStreams.Cli;

/// <summary>Parses and invokes a command line, reporting usage errors in one line each.</summary>
internal static class CommandLineRunner
{
    /// <summary>Exit code for a command line that does not parse or fails validation.</summary>
    public const int UsageErrorExitCode = 2;

    /// <summary>How long Ctrl+C or SIGTERM waits for a command to finish before the process ends anyway.</summary>
    public static readonly TimeSpan ProcessTerminationTimeout = ServeCommand.StopTimeout + TimeSpan.FromSeconds(5);

    public static async Task<int> InvokeAsync(
        IReadOnlyList<string> args,
        InvocationConfiguration configuration,
        CancellationToken cancellationToken = default)
    {
        if (args.Count == 0)
        {
            // A bare `durable-streams` is a usage error: the root help goes to standard error, exit 2.
            await new CommandFactory().CreateRootCommand().Parse(["--help"]).InvokeAsync(
                new InvocationConfiguration { Output = configuration.Error, Error = configuration.Error },
                cancellationToken);
            return UsageErrorExitCode;
        }

        var parseResult = new CommandFactory().CreateRootCommand().Parse(args);
        if (parseResult.Action is ParseErrorAction)
        {
            foreach (var error in parseResult.Errors)
            {
                await configuration.Error.WriteLineAsync(error.Message);
            }

            return UsageErrorExitCode;
        }

        return await parseResult.InvokeAsync(configuration, cancellationToken);
    }
}
