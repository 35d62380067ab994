using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Cli;

/// <summary>
/// The logger behind <c>--verbose</c>: writes the client's request and response events to standard error, one line
/// each (<c>&gt; PUT url</c>, <c>&lt; 201 Created for PUT url in 3 ms</c>, <c>* Retrying ...</c>).
/// </summary>
internal sealed class VerboseLoggerFactory(TextWriter error) : ILoggerFactory
{
    private readonly Lock _gate = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    private void Write(EventId eventId, string message)
    {
        var prefix = LogEvents.TracePrefix(eventId.Id);
        lock (_gate)
        {
            error.WriteLine(prefix + message);
        }
    }

    private sealed class Logger(VerboseLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner.Write(eventId, formatter(state, exception));
            }
        }
    }
}
