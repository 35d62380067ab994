using DurableStreams.Client;
using DurableStreams.Core.Memory;
using DurableStreams.Server;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>Error messages a person can act on: no .NET exception text, and a hint at the fix.</summary>
public sealed partial class ClientCommandTests
{
    [Fact]
    public async Task Https_to_a_plain_HTTP_server_says_the_server_is_not_speaking_HTTPS()
    {
        var https = new UriBuilder(_server.BaseUrl) { Scheme = "https" }.Uri.ToString();

        var run = await RunAsync(["head", "anything", "--url", https]);

        Assert.Equal(ExitCodes.Unreachable, run.ExitCode);
        var message = Assert.Single(Lines(run.Error));
        Assert.Contains("the server is not speaking HTTPS", message, StringComparison.Ordinal);
        Assert.Contains($"try http://{_server.BaseUrl.Authority}", message, StringComparison.Ordinal);
        Assert.DoesNotContain("inner exception", message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Not_found_under_a_URL_without_the_streams_path_hints_at_it()
    {
        var root = _server.BaseUrl.ToString();

        var run = await RunAsync(["head", "missing", "--url", root, "--streams-path", "/"]);
        var under = await RunAsync(["head", "missing"]);

        Assert.Equal(ExitCodes.NotFound, run.ExitCode);
        Assert.Contains($"did you mean --url {root.TrimEnd('/')}/v1/stream?", Assert.Single(Lines(run.Error)), StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, under.ExitCode);
        Assert.DoesNotContain("did you mean", Assert.Single(Lines(under.Error)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_large_names_the_limit_and_the_serve_option_that_raises_it()
    {
        await using var store = new MemoryStreamStore();
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = store, MaxAppendBytes = 16 });
        await server.StartAsync(Token);
        using var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = server.StreamsUrl });
        await client.CreateAsync("small", new CreateStreamOptions { ContentType = "text/plain" }, Token);

        var run = await RunAsync(["append", "small", new string('x', 100), "--url", server.StreamsUrl.ToString()]);

        Assert.Equal(ExitCodes.Error, run.ExitCode);
        var message = Assert.Single(Lines(run.Error));
        Assert.Contains("(413)", message, StringComparison.Ordinal);
        Assert.Contains("--max-append-bytes", message, StringComparison.Ordinal);
    }
}
