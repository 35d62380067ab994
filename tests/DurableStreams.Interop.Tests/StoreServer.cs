using System.Net;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Server;
using DurableStreams.Storage.Files;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Interop.Tests;

/// <summary>
/// Our server on 127.0.0.1 port 0 over a fresh memory or file store (the file store in its own temp directory), for a
/// test that needs the store itself (to compact it, or to restart it) besides the HTTP endpoint.
/// </summary>
internal sealed class StoreServer : IAsyncDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMinutes(2) };
    private readonly string _kind;
    private readonly CancellationToken _cancellationToken;
    private DurableStreamServer _server = null!;

    private StoreServer(string kind, CancellationToken cancellationToken)
    {
        _kind = kind;
        _cancellationToken = cancellationToken;
    }

    /// <summary>The store behind the server.</summary>
    public IStreamStore Store { get; private set; } = null!;

    /// <summary>The file store's data directory (empty for the memory store).</summary>
    public string DataDirectory => _directory.Path;

    /// <summary>The streams root; a restart binds a new port, so build stream URLs from it after one (<see cref="Url"/>).</summary>
    public Uri StreamsUrl => _server.StreamsUrl;

    /// <summary>The URL of the stream <paramref name="name"/> on the server as it runs now.</summary>
    public Uri Url(string name) => new(StreamsUrl, name);

    public HttpClient Http => _http;

    /// <summary>Starts a server over a fresh <paramref name="kind"/> store: <c>memory</c> or <c>file</c>.</summary>
    public static async Task<StoreServer> StartAsync(string kind, CancellationToken cancellationToken)
    {
        var server = new StoreServer(kind, cancellationToken);
        await server.OpenAsync();
        return server;
    }

    /// <summary>Stops the server and closes the store (a file store checkpoints), then opens both again on the same data.</summary>
    public async Task RestartAsync()
    {
        await _server.DisposeAsync();
        await Store.DisposeAsync();
        await OpenAsync();
    }

    private async Task OpenAsync()
    {
        Store = _kind == "file"
            ? FileStreamStore.Open(new FileStreamStoreOptions { DataDirectory = _directory.Path, Durability = DurabilityMode.None })
            : new MemoryStreamStore();
        _server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = Store });
        await _server.StartAsync(_cancellationToken);
    }

    public async Task<Uri> CreateAsync(string contentType, string prefix = "catch-up")
    {
        var url = new Uri(_server.StreamsUrl, $"{prefix}-{Guid.NewGuid():N}");
        using var content = new ByteArrayContent([]);
        content.Headers.ContentType = new(contentType);
        using var response = await _http.PutAsync(url, content, _cancellationToken);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return url;
    }

    /// <summary>Appends <paramref name="body"/> and returns the Stream-Next-Offset the server answered.</summary>
    public async Task<string> AppendAsync(Uri url, string contentType, ReadOnlyMemory<byte> body)
    {
        using var content = new ReadOnlyMemoryContent(body);
        content.Headers.ContentType = new(contentType);
        using var response = await _http.PostAsync(url, content, _cancellationToken);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        return response.Headers.GetValues(Protocol.ProtocolHeaders.StreamNextOffset).Single();
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        await Store.DisposeAsync();
        _directory.Dispose();
    }
}
