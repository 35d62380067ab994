using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text;
using DurableStreams.Cli;
using DurableStreams.Client;
using Xunit;

namespace DurableStreams.Interop.Tests;

/// <summary>The tool's append, read and follow against the Node reference server and ours, in process.</summary>
public sealed class CliInteropTests(ReferenceServer reference, OurServer ours) : InteropTestBase(reference, ours)
{
    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Append_then_read_by_full_stream_url_and_by_url_with_streams_path(string server)
    {
        var root = StreamsUrl(server);
        var name = NewName();
        var streamUrl = new Uri(root, name).AbsoluteUri;
        // The reference serves streams at its root: --streams-path / takes --url as given; ours needs nothing extra.
        string[] byRoot = server == "reference" ? ["--url", root.AbsoluteUri, "--streams-path", "/"] : ["--url", root.GetLeftPart(UriPartial.Authority)];

        var create = await RunAsync(["create", streamUrl, "--content-type", "text/plain", "first|"]);
        var append = await RunAsync(["append", streamUrl, "second|"]);
        var fromStdin = await RunAsync(["append", name, .. byRoot], stdin: "third|");
        var byUrl = await RunAsync(["read", streamUrl]);
        var byName = await RunAsync(["read", name, "--print-offset", .. byRoot]);

        Assert.All(new[] { create, append, fromStdin, byUrl, byName }, run => Assert.Equal(0, run.ExitCode));
        Assert.Equal("first|second|third|", byUrl.Stdout);
        Assert.Equal("first|second|third|", byName.Stdout);
        Assert.NotEmpty(byName.Error.Trim());
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Compact_compacts_a_state_stream_on_ours_and_fails_clearly_where_the_server_has_no_compaction(string server)
    {
        using var client = Client(server);
        var name = NewName("state");
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json" }, Ct);
        foreach (var n in new[] { 1, 2, 3 })
        {
            await client.AppendAsync(name, $$$"""{"type":"row","key":"a","value":{"n":{{{n}}}},"headers":{"operation":"upsert"}}""", "application/json", cancellationToken: Ct);
        }
        var url = new Uri(StreamsUrl(server), name).AbsoluteUri;

        var compact = await RunAsync(["compact", url]);
        var head = await RunAsync(["head", url]);
        var read = await RunAsync(["read", url, "-o", "jsonl"]);

        Assert.Equal(0, head.ExitCode);
        if (server == "ours")
        {
            Assert.True(compact.ExitCode == 0, compact.Error);
            Assert.Contains("compacted", compact.Output, StringComparison.Ordinal);
            Assert.Matches(@"Generation:\s+1 \(compacted\)", head.Output);
            Assert.Equal(3, read.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
        else
        {
            // The reference serves streams at its root and has no compaction route: the tool says so, one line, exit
            // 2, and no request changes the stream.
            Assert.Equal(2, compact.ExitCode);
            Assert.Contains("is not a stream under the client's base URL", compact.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("Unexpected error", compact.Error, StringComparison.Ordinal);
            Assert.DoesNotContain("Generation", head.Output, StringComparison.Ordinal);
            Assert.Equal(3, read.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        }
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Follow_over_sse_and_long_poll_writes_every_append_until_close(string server)
    {
        var root = StreamsUrl(server);
        using var client = Client(server);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        foreach (var part in new[] { "a|", "b|", "c|" })
        {
            await client.AppendAsync(name, part, "text/plain", cancellationToken: Ct);
        }
        await client.CloseAsync(name, Ct);
        var url = new Uri(root, name).AbsoluteUri;

        var sse = await RunAsync(["follow", url, "--live", "sse"]);
        var readSse = await RunAsync(["read", url, "-f", "--live", "sse"]);
        var longPoll = await RunAsync(["follow", url]);

        Assert.Equal("a|b|c|", sse.Stdout);
        Assert.Equal("a|b|c|", readSse.Stdout);
        Assert.Equal("a|b|c|", longPoll.Stdout);
        Assert.All(new[] { sse, readSse, longPoll }, run => Assert.Equal(0, run.ExitCode));
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Append_lines_with_a_producer_to_a_JSON_stream_then_follow_it_as_json_lines(string server)
    {
        var url = new Uri(StreamsUrl(server), NewName("json")).AbsoluteUri;

        var create = await RunAsync(["create", url, "--json"]);
        var append = await RunAsync(["append", url, "--lines", "--producer", "cli-1", "--close"], stdin: "{\"n\":1}\n{\"n\":2}\n\"three\"\n");
        var follow = await RunAsync(["follow", url, "--live", "sse", "--format", "jsonl"]);
        var read = await RunAsync(["read", url, "--format", "json"]);

        Assert.Equal(0, create.ExitCode);
        Assert.Equal(0, append.ExitCode);
        Assert.Equal("{\"n\":1}\n{\"n\":2}\n\"three\"\n", follow.Stdout);
        Assert.Equal("[{\"n\":1},{\"n\":2},\"three\"]\n", read.Stdout);
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Read_stopped_by_a_limit_resumes_from_its_printed_offset_without_losing_data(string server)
    {
        using var client = Client(server);
        var text = NewName("text");
        var json = NewName("json");
        await client.CreateAsync(text, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        await client.CreateAsync(json, new CreateStreamOptions { ContentType = "application/json" }, Ct);
        foreach (var part in new[] { "aaaa\n", "bb\n", "c\n" })
        {
            await client.AppendAsync(text, part, "text/plain", cancellationToken: Ct);
        }
        await client.AppendAsync(json, "[1,2,3]", "application/json", cancellationToken: Ct);
        await client.AppendAsync(json, "[4,5]", "application/json", cancellationToken: Ct);
        var textUrl = new Uri(StreamsUrl(server), text).AbsoluteUri;
        var jsonUrl = new Uri(StreamsUrl(server), json).AbsoluteUri;

        var firstBytes = await RunAsync(["read", textUrl, "--max-bytes", "3", "--print-offset"]);
        var restBytes = await RunAsync(["read", textUrl, "--offset", firstBytes.Error.Trim()]);
        var firstMessages = await RunAsync(["read", jsonUrl, "--max-messages", "2", "--format", "jsonl", "--print-offset"]);
        var restMessages = await RunAsync(["read", jsonUrl, "--offset", firstMessages.Error.Trim(), "--format", "jsonl"]);

        Assert.Equal("aaa", firstBytes.Stdout);
        Assert.Equal("1\n2\n", firstMessages.Stdout);
        if (server == "ours")
        {
            // Offsets are byte positions: the resume offset is exact.
            Assert.Equal("a\nbb\nc\n", restBytes.Stdout);
            Assert.Equal("3\n4\n5\n", restMessages.Stdout);
        }
        else
        {
            // Opaque offsets: the resume re-reads from the start of the chunk that was cut, never skips past it.
            Assert.EndsWith("aaaa\nbb\nc\n", restBytes.Stdout, StringComparison.Ordinal);
            Assert.EndsWith("3\n4\n5\n", restMessages.Stdout, StringComparison.Ordinal);
        }
    }

    private sealed record Run(int ExitCode, string Stdout, string Output, string Error);

    private static async Task<Run> RunAsync(string[] args, string? stdin = null)
    {
        var stdout = new MemoryStream();
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = new ClientConsole
        {
            OpenStandardInput = () => new MemoryStream(Encoding.UTF8.GetBytes(stdin ?? throw new InvalidOperationException("The command read stdin."))),
            OpenStandardOutput = () => stdout,
            GetEnvironmentVariable = _ => null,
            IsErrorTerminal = () => false,
            IsOutputTerminal = () => false,
        };
        var parseResult = new CommandFactory(console).CreateRootCommand().Parse(args);
        Assert.False(parseResult.Action is ParseErrorAction, string.Join(Environment.NewLine, parseResult.Errors.Select(e => e.Message)));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var exitCode = await parseResult.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null }, timeout.Token);
        return new Run(exitCode, Encoding.UTF8.GetString(stdout.ToArray()), output.ToString(), error.ToString());
    }
}
