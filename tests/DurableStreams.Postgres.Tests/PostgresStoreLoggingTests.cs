using System.Threading.Channels;
using DurableStreams.Storage.Postgres;
using Microsoft.Extensions.Logging;
using Xunit;

namespace DurableStreams.Postgres.Tests;

/// <summary>The store logs what it recovers from on its own instead of swallowing it.</summary>
public sealed class PostgresStoreLoggingTests(PostgresServer server)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = 60_000)]
    public async Task A_lost_listener_connection_its_failed_reconnects_and_the_reconnect_are_logged()
    {
        server.SkipIfUnavailable();
        await using var proxy = new TcpProxy(server.Port);
        using var log = new RecordingLoggerProvider();
        await using var store = await PostgresStreamStore.OpenAsync(new PostgresStreamStoreOptions
        {
            ConnectionString = $"Host=127.0.0.1;Port={proxy.Port};Username=postgres;Timeout=2;Command Timeout=5",
            Schema = server.NewSchema(),
            LoggerFactory = log.Factory,
        }, Ct);
        await store.CrossNodeListening;

        proxy.Cut();
        var lost = await log.NextAsync(4000, Ct);
        var failed = await log.NextAsync(4001, Ct);
        proxy.Restore();
        var back = await log.NextAsync(4002, Ct);

        Assert.Equal(LogLevel.Warning, lost.Level);
        Assert.NotNull(lost.Exception);
        Assert.Equal(LogLevel.Debug, failed.Level);
        Assert.NotNull(failed.Exception);
        Assert.Equal(LogLevel.Information, back.Level);
        Assert.Contains("connected to PostgreSQL again", back.Message, StringComparison.Ordinal);
    }

    /// <summary>A fake logger: every entry of every category, readable in order as it arrives.</summary>
    private sealed class RecordingLoggerProvider : ILoggerProvider
    {
        private readonly Channel<Entry> _entries = Channel.CreateUnbounded<Entry>();

        public RecordingLoggerProvider() => Factory = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Trace).AddProvider(this));

        public ILoggerFactory Factory { get; }

        /// <summary>The next entry with <paramref name="eventId"/>, skipping others.</summary>
        public async Task<Entry> NextAsync(int eventId, CancellationToken cancellationToken)
        {
            while (true)
            {
                var entry = await _entries.Reader.ReadAsync(cancellationToken);
                if (entry.EventId == eventId)
                {
                    return entry;
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(_entries.Writer);

        public void Dispose() => Factory.Dispose();

        public sealed record Entry(int EventId, LogLevel Level, string Message, Exception? Exception);

        private sealed class Logger(ChannelWriter<Entry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                entries.TryWrite(new Entry(eventId.Id, logLevel, formatter(state, exception), exception));
        }
    }
}
