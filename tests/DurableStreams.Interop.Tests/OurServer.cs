using DurableStreams.Testing;
using Xunit;

[assembly: AssemblyFixture(typeof(DurableStreams.Interop.Tests.OurServer))]

namespace DurableStreams.Interop.Tests;

/// <summary>Our server (memory store) on 127.0.0.1 port 0, streams under <c>/v1/stream/</c>, for the whole run.</summary>
public sealed class OurServer : IAsyncLifetime
{
    private InProcessServer? _host;

    public Uri StreamsUrl => _host!.StreamsUrl;

    /// <summary>The store behind it, observed: a test can await the moment the server starts a live wait.</summary>
    public ObservedStore Store => _host!.Store;

    public async ValueTask InitializeAsync() => _host = await InProcessServer.StartAsync(cancellationToken: TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
    }
}

/// <summary>The server a test runs against, by name: <c>reference</c> (Node) or <c>ours</c>.</summary>
public abstract class InteropTestBase(ReferenceServer reference, OurServer ours)
{
    /// <summary>Both servers, as theory data.</summary>
    public static TheoryData<string> Servers => new("reference", "ours");

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Our server, for what only it can show (when a live wait has started).</summary>
    protected OurServer Ours => ours;

    /// <summary>The streams root of <paramref name="server"/>; skips (or, under CI, fails) when the reference is unavailable.</summary>
    protected Uri StreamsUrl(string server)
    {
        if (server == "reference")
        {
            reference.RequireRunning();
            return reference.StreamsUrl;
        }
        return ours.StreamsUrl;
    }

    /// <summary>A client for <paramref name="server"/> with its streams root as base URL.</summary>
    protected Client.DurableStreamClient Client(string server, DelegatingHandler? handler = null)
    {
        var options = new Client.DurableStreamClientOptions { BaseUrl = StreamsUrl(server), RequestTimeout = TimeSpan.FromSeconds(45) };
        if (handler is null)
        {
            return new(options);
        }
        handler.InnerHandler = new SocketsHttpHandler();
        return new(new HttpClient(handler) { Timeout = System.Threading.Timeout.InfiniteTimeSpan }, options, ownsHttpClient: true);
    }

    /// <summary>Signals when the <c>count</c>-th request that <c>match</c> accepts is sent.</summary>
    protected sealed class RequestSignal(Func<HttpRequestMessage, bool> match, int count) : DelegatingHandler
    {
        private int _seen;

        public TaskCompletionSource Reached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (match(request) && Interlocked.Increment(ref _seen) == count)
            {
                Reached.TrySetResult();
            }
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>A stream name no other test uses.</summary>
    protected static string NewName(string prefix = "s") => $"{prefix}-{Guid.NewGuid():N}";
}
