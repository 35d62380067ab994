using DurableStreams.Protocol.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace DurableStreams.PowerShell.Internal;

/// <summary>
/// The client's request log for <c>-Verbose</c>, as the tool's <c>-v</c>: each request ("&gt; GET …") and response
/// status ("&lt; 200 …"). The client logs on whatever thread it runs on, so lines are queued here and written with
/// WriteVerbose by the cmdlet on the pipeline thread.
/// </summary>
internal sealed class VerboseLog : ILoggerFactory
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Completes when a line is waiting (it does not take the line).</summary>
    public Task<bool> WaitForLineAsync() => _lines.Reader.WaitToReadAsync().AsTask();

    /// <summary>Takes the next waiting line, if any.</summary>
    public bool TryTake(out string line) => _lines.Reader.TryRead(out line!);

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose() => _lines.Writer.TryComplete();

    private void Add(EventId eventId, string message)
    {
        var prefix = LogEvents.TracePrefix(eventId.Id);
        _lines.Writer.TryWrite(prefix + message);
    }

    private sealed class Logger(VerboseLog owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner.Add(eventId, formatter(state, exception));
            }
        }
    }
}
