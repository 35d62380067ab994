using System.Net.Http.Headers;
using System.Text;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Server.Tests.Infrastructure;

/// <summary>
/// The shared <see cref="InProcessServer"/> (a <see cref="DurableStreamServer"/> on 127.0.0.1:0 backed by an
/// <see cref="ObservedStore"/>) with an <see cref="HttpClient"/> whose base address is the streams URL, so requests use
/// stream names.
/// </summary>
public sealed class ServerHarness : IAsyncDisposable
{
    /// <summary>Any single request that takes this long is a hang, not a slow machine.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(15);

    /// <summary>A fake start time well after the default cursor epoch (2024-10-09), on an interval boundary.</summary>
    public static readonly DateTimeOffset FakeStart = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly InProcessServer _host;

    private ServerHarness(InProcessServer host, FakeTimeProvider? time)
    {
        _host = host;
        Time = time;
        // No draining of abandoned responses: closing an SSE response must close the connection at once, as a
        // browser tab would, so the server sees the disconnect now rather than after the 2 s drain timeout.
        Client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = host.StreamsUrl, Timeout = RequestTimeout };
    }

    public DurableStreamServer Server => _host.Server;

    public ObservedStore Store => _host.Store;

    /// <summary>The server's clock when started with a fake one.</summary>
    public FakeTimeProvider? Time { get; }

    public FakeTimeProvider FakeTime => Time ?? throw new InvalidOperationException("This harness runs on the system clock.");

    public HttpClient Client { get; }

    /// <summary>Starts a server; <paramref name="time"/> becomes both the server's and the store's clock.</summary>
    public static async Task<ServerHarness> StartAsync(
        Action<DurableStreamServerOptions>? configure = null,
        FakeTimeProvider? time = null,
        CancellationToken cancellationToken = default) =>
        new(await InProcessServer.StartAsync(configure, time, cancellationToken: cancellationToken), time);

    /// <summary>Starts a server on a new fake clock set to <see cref="FakeStart"/>.</summary>
    public static Task<ServerHarness> StartWithFakeClockAsync(Action<DurableStreamServerOptions>? configure = null, CancellationToken cancellationToken = default) =>
        StartAsync(configure, new FakeTimeProvider(FakeStart), cancellationToken);

    /// <summary>A stream name no other test uses.</summary>
    public static string NewName(string prefix = "s") => $"{prefix}-{Guid.NewGuid():N}";

    public Uri Url(string name) => new(Server.StreamsUrl, name);

    public static HttpRequestMessage Request(HttpMethod method, string nameAndQuery, HttpContent? content = null) =>
        new(method, new Uri(nameAndQuery, UriKind.Relative)) { Content = content };

    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        Client.SendAsync(request, cancellationToken);

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string nameAndQuery, HttpContent? content, CancellationToken cancellationToken, params (string Name, string Value)[] headers)
    {
        using var request = Request(method, nameAndQuery, content);
        foreach (var (name, value) in headers)
        {
            Assert.True(request.Headers.TryAddWithoutValidation(name, value), $"Could not add header {name}.");
        }
        return await Client.SendAsync(request, cancellationToken);
    }

    public Task<HttpResponseMessage> PutAsync(string name, string? contentType, string? body, CancellationToken cancellationToken, params (string Name, string Value)[] headers) =>
        SendAsync(HttpMethod.Put, name, Body(contentType, body), cancellationToken, headers);

    public Task<HttpResponseMessage> PostAsync(string name, string? contentType, string? body, CancellationToken cancellationToken, params (string Name, string Value)[] headers) =>
        SendAsync(HttpMethod.Post, name, Body(contentType, body), cancellationToken, headers);

    public Task<HttpResponseMessage> GetAsync(string nameAndQuery, CancellationToken cancellationToken, params (string Name, string Value)[] headers) =>
        SendAsync(HttpMethod.Get, nameAndQuery, null, cancellationToken, headers);

    /// <summary>Creates a stream and asserts 201.</summary>
    public async Task<string> CreateAsync(string name, string contentType, string? body, CancellationToken cancellationToken, params (string Name, string Value)[] headers)
    {
        using var response = await PutAsync(name, contentType, body, cancellationToken, headers);
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return Http.Header(response, "Stream-Next-Offset")!;
    }

    /// <summary>Appends and asserts success; returns the new tail.</summary>
    public async Task<string> AppendAsync(string name, string contentType, string body, CancellationToken cancellationToken, params (string Name, string Value)[] headers)
    {
        using var response = await PostAsync(name, contentType, body, cancellationToken, headers);
        Assert.True(response.IsSuccessStatusCode, $"Append answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        return Http.Header(response, "Stream-Next-Offset")!;
    }

    /// <summary>Closes a stream with a close-only POST and asserts success.</summary>
    public async Task<string> CloseAsync(string name, CancellationToken cancellationToken)
    {
        using var response = await PostAsync(name, null, null, cancellationToken, ("Stream-Closed", "true"));
        Assert.Equal(System.Net.HttpStatusCode.NoContent, response.StatusCode);
        return Http.Header(response, "Stream-Next-Offset")!;
    }

    /// <summary>A catch-up read from the start: the body and the tail.</summary>
    public async Task<(string Body, string NextOffset)> ReadAllAsync(string name, CancellationToken cancellationToken)
    {
        using var response = await GetAsync(name + "?offset=-1", cancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadAsStringAsync(cancellationToken), Http.Header(response, "Stream-Next-Offset")!);
    }

    /// <summary>A body with exactly the given Content-Type (no charset added), or none.</summary>
    public static HttpContent? Body(string? contentType, string? body) => Body(contentType, body is null ? null : Encoding.UTF8.GetBytes(body));

    public static HttpContent? Body(string? contentType, byte[]? body)
    {
        if (body is null && contentType is null)
        {
            return null;
        }
        var content = new ByteArrayContent(body ?? []);
        if (contentType is not null)
        {
            content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }
        return content;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _host.DisposeAsync();
    }
}

/// <summary>A server per test class with default options (besides port 0 and an observed store).</summary>
public class ServerFixture : IAsyncLifetime
{
    private ServerHarness? _harness;

    public ServerHarness Harness => _harness ?? throw new InvalidOperationException("The fixture is not initialized.");

    protected virtual void Configure(DurableStreamServerOptions options)
    {
    }

    public async ValueTask InitializeAsync() => _harness = await ServerHarness.StartAsync(Configure);

    public async ValueTask DisposeAsync()
    {
        if (_harness is not null)
        {
            await _harness.DisposeAsync();
        }
        GC.SuppressFinalize(this);
    }
}
