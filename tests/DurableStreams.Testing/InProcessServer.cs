using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Server;

namespace DurableStreams.Testing;

/// <summary>
/// The one in-process server the tests start: a <see cref="DurableStreamServer"/> (Kestrel) on 127.0.0.1 port 0 in front
/// of an <see cref="ObservedStore"/>, so a test can await parked live reads. The server tests (ServerHarness), the client
/// tests (ClientHarness), the subscription tests (SubscriptionHarness), the browser tests and the cross-implementation
/// tests all build on it; each adds only its own client side.
/// </summary>
public sealed class InProcessServer : IAsyncDisposable
{
    private readonly bool _ownsStore;

    private InProcessServer(DurableStreamServer server, ObservedStore store, TimeProvider time, bool ownsStore)
    {
        Server = server;
        Store = store;
        Time = time;
        _ownsStore = ownsStore;
    }

    public DurableStreamServer Server { get; }

    /// <summary>The store the server was given (unless <c>configure</c> replaced it), observed.</summary>
    public ObservedStore Store { get; }

    /// <summary>The clock of the server and of the memory store the harness made.</summary>
    public TimeProvider Time { get; }

    /// <summary>The streams root (base address for requests by stream name).</summary>
    public Uri StreamsUrl => Server.StreamsUrl;

    public Uri BaseUrl => Server.BaseUrl;

    /// <summary>
    /// Starts a server. <paramref name="store"/> (the caller keeps owning it) or else a new memory store on
    /// <paramref name="time"/> (owned and disposed with the server) is wrapped in an <see cref="ObservedStore"/>;
    /// <paramref name="time"/> (default: the system clock) is the server's clock; <paramref name="configure"/> sees the
    /// options last and may change anything, the store included.
    /// </summary>
    public static async Task<InProcessServer> StartAsync(
        Action<DurableStreamServerOptions>? configure = null,
        TimeProvider? time = null,
        IStreamStore? store = null,
        CancellationToken cancellationToken = default)
    {
        var clock = time ?? TimeProvider.System;
        var ownsStore = store is null;
        var observed = new ObservedStore(store ?? new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = clock }));
        var options = new DurableStreamServerOptions { Port = 0, Host = "127.0.0.1", Store = observed, TimeProvider = clock };
        configure?.Invoke(options);
        var server = new DurableStreamServer(options);
        try
        {
            await server.StartAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            if (ownsStore)
            {
                await observed.DisposeAsync();
            }
            throw;
        }
        return new InProcessServer(server, observed, clock, ownsStore);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        if (_ownsStore)
        {
            await Store.DisposeAsync();
        }
    }
}
