using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Client;

/// <summary>
/// A logger factory for <see cref="DurableStreamClientOptions.LoggerFactory"/> that turns the client's request events
/// into one trace line each, prefixed by <see cref="LogEvents.TracePrefix"/> (<c>&gt; PUT url</c>,
/// <c>&lt; 201 Created for PUT url in 3 ms</c>, <c>* Retrying ...</c>), and hands them to a sink. Behind the tool's
/// <c>--verbose</c> and the module's <c>-Verbose</c>.
/// </summary>
/// <remarks>
/// Events at <see cref="LogLevel.Debug"/> and above are written. The client logs on whatever thread it runs on, so
/// <paramref name="sink"/> may be called from several threads at once; it does its own locking or queueing.
/// </remarks>
/// <param name="sink">Receives each line, without a line terminator.</param>
public sealed class RequestTraceLoggerFactory(Action<string> sink) : ILoggerFactory
{
    private readonly Action<string> _sink = sink ?? throw new ArgumentNullException(nameof(sink));

    /// <inheritdoc/>
    public ILogger CreateLogger(string categoryName) => new Logger(_sink);

    /// <summary>Not supported: the factory has one fixed sink.</summary>
    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private sealed class Logger(Action<string> sink) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                sink(LogEvents.TracePrefix(eventId.Id) + formatter(state, exception));
            }
        }
    }
}
