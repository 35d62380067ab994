using DurableStreams.Server;
using DurableStreams.Core.Memory;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;

namespace DurableStreams.Client.Tests.Infrastructure;

/// <summary>
/// A real <see cref="DurableStreamServer"/> on 127.0.0.1:0 with a memory store, and a <see cref="DurableStreamClient"/>
/// whose requests pass through a <see cref="FaultHandler"/>. Retries use 1 ms delays so retry tests stay fast.
/// </summary>
public sealed class ClientHarness : IAsyncDisposable
{
    public static readonly RetryPolicy FastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(5) };

    private ClientHarness(DurableStreamServer server, WaitSignalingStore store, FaultHandler faults, DurableStreamClient client, FakeTimeProvider? time)
    {
        Server = server;
        Store = store;
        Faults = faults;
        Client = client;
        Time = time;
    }

    public DurableStreamServer Server { get; }

    public WaitSignalingStore Store { get; }

    public FaultHandler Faults { get; }

    public DurableStreamClient Client { get; }

    /// <summary>The server's fake clock, when started with one.</summary>
    public FakeTimeProvider? Time { get; }

    public static async Task<ClientHarness> StartAsync(
        Action<DurableStreamServerOptions>? configure = null,
        FakeTimeProvider? time = null,
        Func<DurableStreamClientOptions, DurableStreamClientOptions>? configureClient = null,
        CancellationToken cancellationToken = default)
    {
        var clock = (TimeProvider?)time ?? TimeProvider.System;
        var store = new WaitSignalingStore(new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = clock }));
        var options = new DurableStreamServerOptions { Port = 0, Host = "127.0.0.1", Store = store, TimeProvider = clock };
        configure?.Invoke(options);
        var server = new DurableStreamServer(options);
        try
        {
            await server.StartAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            await store.DisposeAsync();
            throw;
        }
        var faults = new FaultHandler();
        var clientOptions = new DurableStreamClientOptions { BaseUrl = server.StreamsUrl, Retry = FastRetry, RequestTimeout = TimeSpan.FromSeconds(45) };
        clientOptions = configureClient?.Invoke(clientOptions) ?? clientOptions;
        var client = new DurableStreamClient(new HttpClient(faults) { Timeout = Timeout.InfiniteTimeSpan }, clientOptions, ownsHttpClient: true);
        return new ClientHarness(server, store, faults, client, time);
    }

    /// <summary>A stream name no other test uses.</summary>
    public static string NewName(string prefix = "s") => $"{prefix}-{Guid.NewGuid():N}";

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }
}
