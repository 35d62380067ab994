using DurableStreams.Server;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;

namespace DurableStreams.Client.Tests.Infrastructure;

/// <summary>
/// The shared <see cref="InProcessServer"/> (a real <see cref="DurableStreamServer"/> on 127.0.0.1:0 with an observed
/// memory store), and a <see cref="DurableStreamClient"/> whose requests pass through a <see cref="FaultHandler"/>.
/// Retries use 1 ms delays so retry tests stay fast.
/// </summary>
public sealed class ClientHarness : IAsyncDisposable
{
    public static readonly RetryPolicy FastRetry = new() { MaxAttempts = 3, BaseDelay = TimeSpan.FromMilliseconds(1), MaxDelay = TimeSpan.FromMilliseconds(5) };

    private readonly InProcessServer _host;

    private ClientHarness(InProcessServer host, FaultHandler faults, DurableStreamClient client, FakeTimeProvider? time)
    {
        _host = host;
        Faults = faults;
        Client = client;
        Time = time;
    }

    public DurableStreamServer Server => _host.Server;

    public ObservedStore Store => _host.Store;

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
        var host = await InProcessServer.StartAsync(configure, time, cancellationToken: cancellationToken);
        var faults = new FaultHandler();
        var clientOptions = new DurableStreamClientOptions { BaseUrl = host.StreamsUrl, Retry = FastRetry, RequestTimeout = TimeSpan.FromSeconds(45) };
        clientOptions = configureClient?.Invoke(clientOptions) ?? clientOptions;
        var client = new DurableStreamClient(new HttpClient(faults) { Timeout = Timeout.InfiniteTimeSpan }, clientOptions, ownsHttpClient: true);
        return new ClientHarness(host, faults, client, time);
    }

    /// <summary>A stream name no other test uses.</summary>
    public static string NewName(string prefix = "s") => $"{prefix}-{Guid.NewGuid():N}";

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _host.DisposeAsync();
    }
}
