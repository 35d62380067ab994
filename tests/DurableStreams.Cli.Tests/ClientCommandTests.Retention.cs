using System.Text.Json;
using DurableStreams.Core.Memory;
using DurableStreams.Core.Retention;
using DurableStreams.Server;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>head, read and follow on a stream whose front retention dropped (issue 18).</summary>
public sealed partial class ClientCommandTests
{
    private static readonly RetentionPolicy KeepFiveBytes = new(null, 5);

    private static string Offset(long position) => $"0000000000000000_{position:D16}";

    /// <summary>Runs <paramref name="test"/> against its own server whose stream 'trimmed' holds "aaaaabbbbbccccc" trimmed to its last 5 bytes.</summary>
    private async Task WithTrimmedStreamAsync(Func<string, Task> test)
    {
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { Retention = new RetentionPolicies([new RetentionRule("**", KeepFiveBytes)]) });
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = store });
        await server.StartAsync(Token);
        var url = server.StreamsUrl.ToString();
        Assert.Equal(0, (await RunAsync(["create", "trimmed", "--content-type", "text/plain", "aaaaa", "--url", url])).ExitCode);
        Assert.Equal(0, (await RunAsync(["append", "trimmed", "bbbbb", "--url", url])).ExitCode);
        Assert.Equal(0, (await RunAsync(["append", "trimmed", "ccccc", "--url", url])).ExitCode);
        Assert.Equal(10, (await ((IStreamRetention)store).ApplyRetentionAsync("trimmed", KeepFiveBytes, Token)).RetainedStart.Position);
        await test(url);
    }

    [Fact]
    public Task Head_shows_the_retained_start_as_a_line_and_in_json() => WithTrimmedStreamAsync(async url =>
    {
        var head = await RunAsync(["head", "trimmed", "--url", url]);
        var json = await RunAsync(["head", "trimmed", "--json", "--url", url]);

        Assert.Equal(0, head.ExitCode);
        Assert.Contains($"Retained-Start: {Offset(10)}", Lines(head.Output));
        using var metadata = JsonDocument.Parse(json.Output);
        Assert.Equal(Offset(10), metadata.RootElement.GetProperty("retainedStart").GetString());
    });

    [Theory]
    [InlineData("read")]
    [InlineData("follow")]
    public Task Reading_below_the_retained_start_exits_3_saying_where_to_restart(string command) => WithTrimmedStreamAsync(async url =>
    {
        var run = await RunAsync([command, "trimmed", "--offset", Offset(5), "--url", url]);

        Assert.Equal(ExitCodes.NotFound, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.Equal(
            $"Offset {Offset(5)} is before the stream's retained start {Offset(10)} (retention or compaction dropped it); read from the start with --offset -1 (or {Offset(10)}).",
            Assert.Single(Lines(run.Error)));
    });

    [Fact]
    public Task Reading_from_minus_one_prints_what_remains() => WithTrimmedStreamAsync(async url =>
    {
        var run = await RunAsync(["read", "trimmed", "--url", url]);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("ccccc", run.Stdout);
    });
}
