using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using DurableStreams.Server;
using DurableStreams.Core;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Subscriptions.Tests;

/// <summary>
/// The shared <see cref="InProcessServer"/> (127.0.0.1:0) with subscriptions on, a webhook handler that records requests
/// and answers from a queue, and a state store that reports every save, so tests await state changes instead of sleeping.
/// </summary>
internal sealed class SubscriptionHarness : IAsyncDisposable
{
    private readonly InProcessServer _host;

    private SubscriptionHarness(InProcessServer host, RecordingWebhookHandler webhooks, ObservedStateStore state)
    {
        _host = host;
        Webhooks = webhooks;
        State = state;
        Client = new HttpClient { BaseAddress = host.StreamsUrl, Timeout = TimeSpan.FromSeconds(15) };
    }

    public DurableStreamServer Server => _host.Server;
    public RecordingWebhookHandler Webhooks { get; }
    public ObservedStateStore State { get; }
    public HttpClient Client { get; }

    /// <summary>Public-looking names resolve to a documentation-free public address; nothing is ever contacted.</summary>
    public static Task<IPAddress[]> ResolvePublicAsync(string host, CancellationToken cancellationToken) =>
        Task.FromResult(new[] { IPAddress.Parse("93.184.216.34") });

    /// <summary>Starts the server over <paramref name="store"/>, which the caller keeps owning.</summary>
    public static async Task<SubscriptionHarness> StartAsync(
        IStreamStore store, ObservedStateStore state, TimeProvider time, double jitter = 0.5, Action<DurableStreamServerOptions>? configure = null)
    {
        var webhooks = new RecordingWebhookHandler();
        var host = await InProcessServer.StartAsync(
            options =>
            {
                options.EnableSubscriptions = true;
                options.Subscriptions.State = state;
                options.Subscriptions.WebhookHandler = webhooks;
                options.Subscriptions.HostResolver = ResolvePublicAsync;
                options.Subscriptions.JitterSource = () => jitter;
                configure?.Invoke(options);
            },
            time,
            store,
            TestContext.Current.CancellationToken);
        return new SubscriptionHarness(host, webhooks, state);
    }

    public async Task<HttpResponseMessage> PutJsonAsync(string path, string json) =>
        await Client.PutAsync(path, new StringContent(json, Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);

    public async Task<HttpResponseMessage> PostJsonAsync(string path, string json, string? bearer = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }
        return await Client.SendAsync(request, TestContext.Current.CancellationToken);
    }

    public async Task<JsonElement> GetJsonAsync(string path)
    {
        using var response = await Client.GetAsync(path, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken)).Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _host.DisposeAsync();
    }
}

/// <summary>Records webhook requests and answers each with the next queued response (200 <c>{}</c> when none is queued).</summary>
internal sealed class RecordingWebhookHandler : HttpMessageHandler
{
    private readonly Channel<(string Body, string? Signature)> _requests = Channel.CreateUnbounded<(string, string?)>();
    private readonly Queue<(HttpStatusCode Status, string Body)> _responses = new();

    public void Enqueue(HttpStatusCode status, string body)
    {
        lock (_responses)
        {
            _responses.Enqueue((status, body));
        }
    }

    public async Task<(string Body, string? Signature)> NextRequestAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        return await _requests.Reader.ReadAsync(timeout.Token);
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = await request.Content!.ReadAsStringAsync(cancellationToken);
        var signature = request.Headers.TryGetValues("Webhook-Signature", out var values) ? values.Single() : null;
        (HttpStatusCode Status, string Body) answer;
        lock (_responses)
        {
            answer = _responses.Count > 0 ? _responses.Dequeue() : (HttpStatusCode.OK, "{}");
        }
        await _requests.Writer.WriteAsync((body, signature), cancellationToken);
        return new HttpResponseMessage(answer.Status) { Content = new StringContent(answer.Body, Encoding.UTF8, "application/json") };
    }
}

/// <summary>A state store (in memory, or wrapping a file-backed one) that reports every saved subscription.</summary>
internal sealed class ObservedStateStore(ISubscriptionStateStore inner) : ISubscriptionStateStore
{
    private readonly Channel<SubscriptionState> _saved = Channel.CreateUnbounded<SubscriptionState>();

    public ValueTask<SubscriptionStateSnapshot> LoadAsync(CancellationToken cancellationToken = default) => inner.LoadAsync(cancellationToken);

    public async ValueTask SaveAsync(SubscriptionState subscription, CancellationToken cancellationToken = default)
    {
        await inner.SaveAsync(subscription, cancellationToken);
        var copy = JsonSerializer.Deserialize<SubscriptionState>(JsonSerializer.Serialize(subscription));
        _saved.Writer.TryWrite(copy!);
    }

    public ValueTask DeleteAsync(string id, CancellationToken cancellationToken = default) => inner.DeleteAsync(id, cancellationToken);

    public ValueTask SaveSigningKeysAsync(IReadOnlyList<SigningKeyState> keys, CancellationToken cancellationToken = default) =>
        inner.SaveSigningKeysAsync(keys, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    /// <summary>Waits for a save whose state satisfies <paramref name="predicate"/>.</summary>
    public async Task<SubscriptionState> WaitForSaveAsync(Func<SubscriptionState, bool> predicate)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        while (true)
        {
            var state = await _saved.Reader.ReadAsync(timeout.Token);
            if (predicate(state))
            {
                return state;
            }
        }
    }
}
