using System.Text.Json;
using DurableStreams.Core.Memory;
using DurableStreams.Server;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>compact and head on a State-Protocol stream (issue 18).</summary>
public sealed partial class ClientCommandTests
{
    private static string Change(string key, string operation, int value) =>
        $$$"""{"type":"user","key":"{{{key}}}","value":{"v":{{{value}}}},"headers":{"operation":"{{{operation}}}"}}""";

    /// <summary>Runs <paramref name="test"/> against its own server (admin token 'admin') whose JSON stream 'state' updates one key ten times.</summary>
    private async Task WithStateStreamAsync(Func<string, Task> test)
    {
        await using var store = new MemoryStreamStore();
        var options = new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = store };
        options.AdminTokens.Add("admin");
        await using var server = new DurableStreamServer(options);
        await server.StartAsync(Token);
        var url = server.StreamsUrl.ToString();
        Assert.Equal(0, (await RunAsync(["create", "state", "--json", "--url", url, "--auth", "Bearer admin"])).ExitCode);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(0, (await RunAsync(["append", "state", Change("a", i == 0 ? "insert" : "update", i), "--url", url, "--auth", "Bearer admin"])).ExitCode);
        }
        await test(url);
    }

    [Fact]
    public Task Compact_prints_a_one_line_summary_and_head_then_shows_the_generation() => WithStateStreamAsync(async url =>
    {
        var compact = await RunAsync(["compact", "state", "--url", url, "--auth", "Bearer admin"]);
        var head = await RunAsync(["head", "state", "--url", url, "--auth", "Bearer admin"]);
        var headJson = await RunAsync(["head", "state", "-o", "json", "--url", url, "--auth", "Bearer admin"]);
        var again = await RunAsync(["compact", "state", "-o", "json", "--url", url, "--auth", "Bearer admin"]);

        Assert.Equal(0, compact.ExitCode);
        var line = Assert.Single(Lines(compact.Output));
        Assert.StartsWith("state: compacted 10 messages (", line, StringComparison.Ordinal);
        Assert.Contains("to 1 live keys", line, StringComparison.Ordinal);
        Assert.Contains("generation 1, retained start 0000000000000001_", line, StringComparison.Ordinal);
        Assert.Contains("Generation:", head.Output, StringComparison.Ordinal);
        Assert.Contains("1 (compacted)", head.Output, StringComparison.Ordinal);
        using var metadata = JsonDocument.Parse(headJson.Output);
        Assert.Equal(1, metadata.RootElement.GetProperty("generation").GetInt64());
        Assert.Equal(0, again.ExitCode);
        using var report = JsonDocument.Parse(again.Output);
        Assert.Equal("notDue", report.RootElement.GetProperty("outcome").GetString());
        Assert.Equal("state", report.RootElement.GetProperty("stream").GetString());
    });

    [Fact]
    public Task Compact_without_an_admin_token_or_of_an_unknown_stream_fails_with_a_clear_message() => WithStateStreamAsync(async url =>
    {
        var anonymous = await RunAsync(["compact", "state", "--url", url]);
        var unknown = await RunAsync(["compact", "nope", "--url", url, "--auth", "Bearer admin"]);

        Assert.Equal(ExitCodes.Error, anonymous.ExitCode);
        Assert.Contains("401", Assert.Single(Lines(anonymous.Error)), StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, unknown.ExitCode);
        Assert.Contains("nope", Assert.Single(Lines(unknown.Error)), StringComparison.Ordinal);
    });
}
