using DurableStreams.Server;

namespace DurableStreams.Cli;

/// <summary>The storage back end chosen on the <c>serve</c> command line.</summary>
internal enum ServeStore
{
    /// <summary>In-memory store; everything is lost when the server stops.</summary>
    Memory,
}

/// <summary>
/// Settings read from the <c>serve</c> command line, kept apart from the engine's
/// <see cref="DurableStreamServerOptions"/> so parsing can be tested without starting a server.
/// </summary>
internal sealed record ServeOptions
{
    public required string Host { get; init; }

    public required int Port { get; init; }

    public required ServeStore Store { get; init; }

    public required TimeSpan LongPollTimeout { get; init; }

    public required TimeSpan SseReconnectInterval { get; init; }

    public required IReadOnlyList<string> CorsOrigins { get; init; }

    public required long MaxAppendBytes { get; init; }

    public required int MaxReadChunkBytes { get; init; }

    /// <summary>Creates the engine options. A null <see cref="DurableStreamServerOptions.Store"/> selects the in-memory store.</summary>
    public DurableStreamServerOptions ToServerOptions()
    {
        var options = new DurableStreamServerOptions
        {
            Host = Host,
            Port = Port,
            Store = null,
            LongPollTimeout = LongPollTimeout,
            SseReconnectInterval = SseReconnectInterval,
            MaxAppendBytes = MaxAppendBytes,
            MaxReadChunkBytes = MaxReadChunkBytes,
        };
        options.CorsOrigins.Clear();
        foreach (var origin in CorsOrigins)
        {
            options.CorsOrigins.Add(origin);
        }

        return options;
    }
}
