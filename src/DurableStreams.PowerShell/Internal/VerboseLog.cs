using System.Threading.Channels;
using DurableStreams.Client;

namespace DurableStreams.PowerShell.Internal;

/// <summary>
/// The client's request log for <c>-Verbose</c>, as the tool's <c>-v</c> (<see cref="RequestTraceLoggerFactory"/>):
/// each request ("&gt; GET …") and response status ("&lt; 200 …"). The client logs on whatever thread it runs on, so
/// lines are queued here and written with WriteVerbose by the cmdlet on the pipeline thread.
/// </summary>
internal sealed class VerboseLog : IDisposable
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    public VerboseLog() => Factory = new RequestTraceLoggerFactory(line => _lines.Writer.TryWrite(line));

    /// <summary>The logger factory to give the client.</summary>
    public RequestTraceLoggerFactory Factory { get; }

    /// <summary>Completes when a line is waiting (it does not take the line).</summary>
    public Task<bool> WaitForLineAsync() => _lines.Reader.WaitToReadAsync().AsTask();

    /// <summary>Takes the next waiting line, if any.</summary>
    public bool TryTake(out string line) => _lines.Reader.TryRead(out line!);

    public void Dispose() => _lines.Writer.TryComplete();
}
