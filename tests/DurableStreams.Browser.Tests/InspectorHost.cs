using System.Net;
using System.Net.Http.Headers;
using System.Text;
using DurableStreams.Core.Memory;
using DurableStreams.Core.Retention;
using DurableStreams.Server;
using DurableStreams.Testing;
using Microsoft.Playwright;
using Xunit;

namespace DurableStreams.Browser.Tests;

/// <summary>The shared <see cref="InProcessServer"/> (127.0.0.1 port 0) with the inspector mapped, an HTTP client for it, and a page.</summary>
internal sealed class InspectorHost : IAsyncDisposable
{
    public const string ReadToken = "read-secret";
    public const string WriteToken = "write-secret";

    private readonly InProcessServer _host;

    private readonly MemoryStreamStore? _store;

    private InspectorHost(InProcessServer host, HttpClient client, IBrowserContext context, IPage page, MemoryStreamStore? store)
    {
        _host = host;
        _store = store;
        Client = client;
        Context = context;
        Page = page;
    }

    public DurableStreamServer Server => _host.Server;

    public HttpClient Client { get; }

    public IBrowserContext Context { get; }

    public IPage Page { get; }

    /// <summary>
    /// Console errors of the page (a CSP violation or a script error shows here), without Chromium's "Failed to load
    /// resource" lines for HTTP error statuses the page handles (a 404 for a server without the registry).
    /// </summary>
    public List<string> ConsoleErrors { get; } = [];

    /// <summary>The memory store started with retention policies, whose retention a test triggers; null otherwise.</summary>
    public MemoryStreamStore RetentionStore => _store ?? throw new InvalidOperationException("Started without retention policies.");

    public static async Task<InspectorHost> StartAsync(IBrowser browser, bool registry = false, bool tokens = false, RetentionPolicies? retention = null)
    {
        var store = retention is null ? null : new MemoryStreamStore(new MemoryStreamStoreOptions { Retention = retention });
        var server = await InProcessServer.StartAsync(
            options =>
            {
                options.Inspector = true;
                options.Registry = registry;
                options.SseReconnectInterval = TimeSpan.FromSeconds(20);
                if (tokens)
                {
                    options.ReadTokens.Add(ReadToken);
                    options.WriteTokens.Add(WriteToken);
                }
            },
            store: store,
            cancellationToken: TestContext.Current.CancellationToken);
        var client = new HttpClient { BaseAddress = server.StreamsUrl };
        if (tokens)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", WriteToken);
        }
        var context = await browser.NewContextAsync(new() { BaseURL = server.BaseUrl.ToString(), ViewportSize = new() { Width = 1280, Height = 900 } });
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"]);
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(10_000);
        var host = new InspectorHost(server, client, context, page, store);
        page.Console += (_, message) =>
        {
            if (message.Type == "error" && !message.Text.StartsWith("Failed to load resource: the server responded with a status of", StringComparison.Ordinal))
            {
                host.ConsoleErrors.Add(message.Text);
            }
        };
        return host;
    }

    public async Task CreateAsync(string name, string contentType = "application/json")
    {
        using var content = new ByteArrayContent([]);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        using var response = await Client.PutAsync(name, content, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    /// <summary>Appends and returns the tail offset after the append.</summary>
    public async Task<string> AppendAsync(string name, byte[] body, string contentType = "application/json")
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        using var response = await Client.PostAsync(name, content, TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"append answered {(int)response.StatusCode}");
        return response.Headers.GetValues("Stream-Next-Offset").Single();
    }

    public Task<string> AppendJsonAsync(string name, string json) => AppendAsync(name, Encoding.UTF8.GetBytes(json));

    public async Task<HttpStatusCode> HeadAsync(string name)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, name);
        using var response = await Client.SendAsync(request, TestContext.Current.CancellationToken);
        return response.StatusCode;
    }

    public async Task<string?> TailAsync(string name)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, name);
        using var response = await Client.SendAsync(request, TestContext.Current.CancellationToken);
        return response.Headers.TryGetValues("Stream-Next-Offset", out var values) ? values.Single() : null;
    }

    public async ValueTask DisposeAsync()
    {
        await Context.DisposeAsync();
        Client.Dispose();
        await _host.DisposeAsync();
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }
    }
}
