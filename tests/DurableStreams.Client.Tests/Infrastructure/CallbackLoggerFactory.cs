using Microsoft.Extensions.Logging;

namespace DurableStreams.Client.Tests.Infrastructure;

/// <summary>A logger factory whose loggers hand every message (event id and text) to a callback.</summary>
public sealed class CallbackLoggerFactory(Action<EventId, string> onLog) : ILoggerFactory, ILogger
{
    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel))
        {
            onLog(eventId, formatter(state, exception));
        }
    }

    public void Dispose()
    {
    }
}
