using System.Text.Json;
using DurableStreams.Client;
using DurableStreams.Server;
using Xunit;

namespace DurableStreams.Cli.Tests;

public sealed partial class ClientCommandTests
{
    [Fact]
    public async Task Ls_on_a_server_without_a_registry_says_so_and_exits_3()
    {
        var run = await RunAsync(["ls"]);

        Assert.Equal(3, run.ExitCode);
        Assert.Equal(ListCommand.NoRegistryMessage, Assert.Single(Lines(run.Error)));
        Assert.Equal("", run.Output);
    }

    [Fact]
    public async Task Ls_lists_the_registry_as_names_a_table_on_a_terminal_and_json()
    {
        // A second server on the same store keeps the registry.
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = _store, Registry = true });
        await server.StartAsync(Token);
        var url = server.StreamsUrl.ToString();
        var empty = await RunAsync(["ls", "--url", url]);
        Assert.Equal(0, empty.ExitCode);
        Assert.Equal("", empty.Output);

        Assert.Equal(0, (await RunAsync(["create", "orders", "--json", "--url", url])).ExitCode);
        Assert.Equal(0, (await RunAsync(["create", "a/long-name", "--content-type", "text/plain", "--url", url])).ExitCode);
        Assert.Equal(0, (await RunAsync(["create", "gone", "--url", url])).ExitCode);
        Assert.Equal(0, (await RunAsync(["delete", "gone", "--url", url])).ExitCode);

        var names = await RunAsync(["ls", "--url", url]);
        var table = await RunAsync(["ls", "--url", url], terminal: true);
        var json = await RunAsync(["ls", "--json", "--url", url]);

        Assert.Equal(0, names.ExitCode);
        Assert.Equal(["a/long-name", "orders"], Lines(names.Output));
        Assert.Equal(0, table.ExitCode);
        var rows = table.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(r => r.TrimEnd('\r')).ToArray();
        Assert.Equal(3, rows.Length);
        Assert.StartsWith("NAME         CONTENT TYPE      SIZE  CLOSED  CREATED (UTC)", rows[0], StringComparison.Ordinal);
        Assert.StartsWith("a/long-name  text/plain         0 B  no      ", rows[1], StringComparison.Ordinal);
        Assert.StartsWith("orders       application/json   0 B  no      ", rows[2], StringComparison.Ordinal);
        Assert.Equal(rows[0].IndexOf("CREATED", StringComparison.Ordinal), rows[2].IndexOf(DateTime.UtcNow.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        Assert.Equal(0, json.ExitCode);
        using var parsed = JsonDocument.Parse(json.Output);
        Assert.Equal(["a/long-name", "orders"], parsed.RootElement.EnumerateArray().Select(e => e.GetProperty("name").GetString()));
        Assert.Equal("application/json", parsed.RootElement[1].GetProperty("contentType").GetString());
        Assert.True(DateTimeOffset.TryParse(parsed.RootElement[1].GetProperty("createdAt").GetString(), System.Globalization.CultureInfo.InvariantCulture, out _));
        Assert.Equal(2, (await StreamRegistry.ListAsync(_client, Token))?.Count);
    }
}
