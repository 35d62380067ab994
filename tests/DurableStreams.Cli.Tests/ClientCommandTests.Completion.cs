using System.Net;
using System.Net.Sockets;
using DurableStreams.Client;
using DurableStreams.Server;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>Tab completion of stream names from the registry of the server at --url.</summary>
public sealed partial class ClientCommandTests
{
    [Fact]
    public async Task The_suggest_directive_offers_stream_names_from_the_servers_registry()
    {
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = _store, Registry = true });
        await server.StartAsync(Token);
        using var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = server.StreamsUrl });
        foreach (var name in new[] { "orders", "orders/eu", "other", "logs" })
        {
            await client.CreateAsync(name, cancellationToken: Token);
        }

        var prefix = $"--url {server.StreamsUrl} ";
        var read = await SuggestAsync(prefix + "read or", "or");
        var fork = await SuggestAsync(prefix + "fork orders o", "o");
        var forkFrom = await SuggestAsync(prefix + "create copy --fork-from l", "l");
        var ls = await SuggestAsync(prefix + "ls o", "o");
        var all = await SuggestAsync(prefix + "head ", "");

        Assert.Equal(["orders", "orders/eu"], read);
        Assert.Equal(["orders", "orders/eu", "other"], fork);
        Assert.Equal(["logs"], forkFrom);
        Assert.Equal(["orders", "orders/eu", "other"], ls);
        Assert.Equal(["logs", "orders", "orders/eu", "other"], all.Where(s => !s.StartsWith('-') && !s.StartsWith('/'))); // options (and help's /? and /h) come along
    }

    [Fact]
    public async Task Stream_name_completion_without_a_server_or_registry_offers_nothing_and_prints_nothing()
    {
        using var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop(); // nothing listens there now

        // No option contains "zz", so any suggestion would be a stream name.
        var noServerLine = $"--url http://127.0.0.1:{port} read zz";
        var noRegistryLine = $"--url {Url} read zz";
        var noServer = await RunLineAsync($"[suggest:{noServerLine.Length}]", noServerLine);
        var noRegistry = await RunLineAsync($"[suggest:{noRegistryLine.Length}]", noRegistryLine);

        Assert.All(new[] { noServer, noRegistry }, run =>
        {
            Assert.Equal(0, run.ExitCode);
            Assert.Equal("", run.Output.Trim()); // the directive writes one empty line when it has nothing to offer
            Assert.Equal("", run.Error);
        });
    }

    /// <summary>
    /// The suggestions for the cursor at the end of <paramref name="line"/> that start with <paramref name="word"/>, as the
    /// printed shell snippets keep them (the directive itself matches by substring).
    /// </summary>
    private async Task<string[]> SuggestAsync(string line, string word)
    {
        var run = await RunLineAsync($"[suggest:{line.Length}]", line);
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Error);
        return run.Output.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(s => s.StartsWith(word, StringComparison.Ordinal)).ToArray();
    }
}
