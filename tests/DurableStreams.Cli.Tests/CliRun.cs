using System.CommandLine;

namespace DurableStreams.Cli.Tests;

/// <summary>Runs the tool's command line in process, as the program does, capturing standard output and error.</summary>
internal static class CliRun
{
    public static async Task<(int ExitCode, string Output, string Error)> InvokeAsync(string[] args, CancellationToken cancellationToken)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        var exitCode = await CommandLineRunner.InvokeAsync(args, configuration, cancellationToken).WaitAsync(cancellationToken);
        return (exitCode, output.ToString(), error.ToString());
    }

    /// <summary>The <c>serve</c> options a command line parses to; the line must parse without errors.</summary>
    public static ServeOptions ParseServe(params string[] args)
    {
        var factory = new CommandFactory();
        var parseResult = factory.CreateRootCommand().Parse(args);
        Xunit.Assert.Empty(parseResult.Errors);
        return factory.Serve.GetOptions(parseResult);
    }
}
