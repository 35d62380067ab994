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
