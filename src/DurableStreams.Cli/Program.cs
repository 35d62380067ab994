using System.CommandLine;
using DurableStreams.Cli;

var configuration = new InvocationConfiguration
{
    // Ctrl+C and SIGTERM cancel the command's token; serve then stops gracefully and exits 0.
    ProcessTerminationTimeout = CommandLineRunner.ProcessTerminationTimeout,
};
return await CommandLineRunner.InvokeAsync(args, configuration);
