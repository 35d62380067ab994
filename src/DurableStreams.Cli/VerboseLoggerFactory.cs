using DurableStreams.Client;

namespace DurableStreams.Cli;

/// <summary>
/// The logger behind <c>--verbose</c>: the client's request trace lines (<see cref="RequestTraceLoggerFactory"/>)
/// written to standard error, one whole line at a time.
/// </summary>
internal static class VerboseLoggerFactory
{
    public static RequestTraceLoggerFactory Create(TextWriter error)
    {
        var gate = new Lock();
        return new RequestTraceLoggerFactory(line =>
        {
            lock (gate)
            {
                error.WriteLine(line);
            }
        });
    }
}
