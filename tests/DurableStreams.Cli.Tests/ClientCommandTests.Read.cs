using System.Net;
using System.Net.Sockets;
using System.Text;
using DurableStreams.Client;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>read formats and limits, follow, fork, ls, --timeout, --verbose, Ctrl+C and the [suggest] directive.</summary>
public sealed partial class ClientCommandTests
{
    private const string ThreeMessages = """[{"n":1},{"text":"é"},[1,2]]""";

    [Fact]
    public async Task Read_formats_a_JSON_stream_as_one_array_as_lines_or_pretty()
    {
        await _client.CreateAsync("fmt", new CreateStreamOptions { ContentType = "application/json", Body = Encoding.UTF8.GetBytes(ThreeMessages) }, Token);
        await _client.AppendAsync("fmt", "\"four\"", "application/json", cancellationToken: Token);

        var json = await RunAsync(["read", "fmt", "--format", "json"]);
        var jsonLines = await RunAsync(["read", "fmt", "--format", "jsonl"]);
        var pretty = await RunAsync(["read", "fmt", "--format", "pretty"]);
        var raw = await RunAsync(["read", "fmt"]);

        Assert.Equal("""[{"n":1},{"text":"é"},[1,2],"four"]""" + "\n", json.Stdout);
        Assert.Equal("{\"n\":1}\n{\"text\":\"é\"}\n[1,2]\n\"four\"\n", jsonLines.Stdout);
        Assert.Equal("{\n  \"n\": 1\n}\n{\n  \"text\": \"é\"\n}\n[\n  1,\n  2\n]\n\"four\"\n", pretty.Stdout.ReplaceLineEndings("\n"));
        Assert.StartsWith("[{\"n\":1},", raw.Stdout, StringComparison.Ordinal);
        Assert.All(new[] { json, jsonLines, pretty, raw }, run => Assert.Equal(0, run.ExitCode));
    }

    [Fact]
    public async Task Read_max_messages_on_a_JSON_stream_stops_after_whole_messages_and_prints_the_exact_resume_offset()
    {
        await _client.CreateAsync("limit", new CreateStreamOptions { ContentType = "application/json", Body = Encoding.UTF8.GetBytes(ThreeMessages) }, Token);

        var first = await RunAsync(["read", "limit", "--max-messages", "2", "--format", "jsonl", "--print-offset"]);
        var offset = Assert.Single(Lines(first.Error));
        var rest = await RunAsync(["read", "limit", "--offset", offset, "--format", "jsonl"]);
        var bytes = await RunAsync(["read", "limit", "--max-bytes", "19", "--format", "json"]); // {"n":1} is 7 bytes, {"text":"é"} 13

        Assert.Equal("{\"n\":1}\n{\"text\":\"é\"}\n", first.Stdout);
        Assert.Equal("[1,2]\n", rest.Stdout);
        Assert.Equal("""[{"n":1}]""" + "\n", bytes.Stdout);
    }

    [Fact]
    public async Task Read_limits_on_a_text_stream_count_bytes_and_lines_and_resume_exactly()
    {
        await _client.CreateAsync("text", new CreateStreamOptions { ContentType = "text/plain", Body = "alpha\nbeta\ngamma\n"u8.ToArray() }, Token);

        var byBytes = await RunAsync(["read", "text", "--max-bytes", "3", "--print-offset"]);
        var afterBytes = await RunAsync(["read", "text", "--offset", Assert.Single(Lines(byBytes.Error)), "--max-messages", "2", "--print-offset"]);
        var afterLines = await RunAsync(["read", "text", "--offset", Assert.Single(Lines(afterBytes.Error))]);

        Assert.Equal("alp", byBytes.Stdout);
        Assert.Equal("ha\nbeta\n", afterBytes.Stdout);
        Assert.Equal("gamma\n", afterLines.Stdout);
    }

    [Fact]
    public async Task Read_with_a_JSON_format_on_a_text_stream_fails_with_one_line()
    {
        await _client.CreateAsync("plain", new CreateStreamOptions { ContentType = "text/plain" }, Token);

        var run = await RunAsync(["read", "plain", "--format", "jsonl"]);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("Stream 'plain' is text/plain, not JSON: --output jsonl needs a JSON stream.", Assert.Single(Lines(run.Error)));
    }

    [Fact]
    public async Task Follow_from_now_prints_only_new_data_until_the_stream_is_closed()
    {
        await _client.CreateAsync("live", new CreateStreamOptions { ContentType = "text/plain", Body = "old|"u8.ToArray() }, Token);
        var stdout = new SignalingStream();

        var follow = RunAsync(["follow", "live", "--offset", "now"], stdout: stdout);
        await _store.WaitStartedAsync("live", Token); // the long-poll is parked at the tail: "now" has been resolved
        await _client.AppendAsync("live", "new|", "text/plain", cancellationToken: Token);
        await stdout.FirstWrite.WaitAsync(Token);
        await _client.CloseAsync("live", Token);
        var run = await follow;

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("new|", run.Stdout);
    }

    [Fact]
    public async Task Ctrl_C_stops_a_follow_with_exit_code_0_and_reports_the_offset_reached()
    {
        await _client.CreateAsync("stop", new CreateStreamOptions { ContentType = "text/plain", Body = "data"u8.ToArray() }, Token);
        var tail = (await _client.GetMetadataAsync("stop", Token)).NextOffset;
        var stdout = new SignalingStream();
        using var ctrlC = new CancellationTokenSource();

        var follow = RunAsync(["follow", "stop", "--format", "raw"], stdout: stdout, ctrlC: ctrlC);
        await stdout.FirstWrite.WaitAsync(Token);
        await ctrlC.CancelAsync();
        var run = await follow;

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("data", run.Stdout);
        Assert.Equal($"Stopped at offset {tail}; resume with --offset {tail}.", Assert.Single(Lines(run.Error)));
    }

    [Fact]
    public async Task Ctrl_C_during_a_follow_with_format_json_still_closes_the_array_and_print_offset_prints_it_bare()
    {
        await _client.CreateAsync("arr", new CreateStreamOptions { ContentType = "application/json", Body = "[1,2]"u8.ToArray() }, Token);
        var tail = (await _client.GetMetadataAsync("arr", Token)).NextOffset;
        var stdout = new SignalingStream();
        using var ctrlC = new CancellationTokenSource();

        var follow = RunAsync(["read", "arr", "-f", "--live", "sse", "--format", "json", "--print-offset"], stdout: stdout, ctrlC: ctrlC);
        await stdout.FirstWrite.WaitAsync(Token);
        await ctrlC.CancelAsync();
        var run = await follow;

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("[1,2]\n", run.Stdout);
        Assert.Equal(tail, Assert.Single(Lines(run.Error)));
    }

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task Follow_as_a_process_stops_on_a_signal_with_exit_code_0_and_reports_the_offset(string signal)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "Sends POSIX signals with kill(1).");
        await _client.CreateAsync("proc", new CreateStreamOptions { ContentType = "text/plain", Body = "line\n"u8.ToArray() }, Token);
        var tail = (await _client.GetMetadataAsync("proc", Token)).NextOffset;
        var startInfo = new System.Diagnostics.ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { Path.Combine(AppContext.BaseDirectory, "durable-streams.dll"), "follow", "proc", "--url", Url })
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var follow = System.Diagnostics.Process.Start(startInfo)!;
        try
        {
            var errors = follow.StandardError.ReadToEndAsync(Token);
            Assert.Equal("line", await follow.StandardOutput.ReadLineAsync(Token)); // caught up; now parked in a long-poll
            using (var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, follow.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(Token);
            }

            await follow.WaitForExitAsync(Token);
            Assert.Equal(0, follow.ExitCode);
            Assert.Equal($"Stopped at offset {tail}; resume with --offset {tail}.", Assert.Single(Lines(await errors)));
        }
        finally
        {
            if (!follow.HasExited)
            {
                follow.Kill();
            }
        }
    }

    [Fact]
    public async Task Fork_creates_a_stream_sharing_the_source_up_to_the_offset()
    {
        await _client.CreateAsync("src", new CreateStreamOptions { ContentType = "text/plain", Body = "shared|"u8.ToArray() }, Token);
        var forkPoint = (await _client.GetMetadataAsync("src", Token)).NextOffset;
        await _client.AppendAsync("src", "source-only", "text/plain", cancellationToken: Token);

        var fork = await RunAsync(["fork", "src", "copy", "--offset", forkPoint]);
        Assert.Equal(0, (await RunAsync(["append", "copy", "fork-only"])).ExitCode);
        var viaCreate = await RunAsync(["create", "copy2", "--fork-from", "src"]);
        var missing = await RunAsync(["fork", "nothing-here", "copy3"]);
        var again = await RunAsync(["fork", "src", "copy", "--offset", forkPoint]);
        var ontoOther = await RunAsync(["fork", "src", "copy2", "--offset", forkPoint]);

        Assert.Equal(0, fork.ExitCode);
        Assert.Equal(["Created stream 'copy'."], Lines(fork.Error));
        Assert.Equal(0, again.ExitCode); // the same fork again: found, not an error
        Assert.Equal(["Stream 'copy' already exists with these settings; nothing was changed."], Lines(again.Error));
        Assert.Equal(ExitCodes.Conflict, ontoOther.ExitCode); // copy2 forks src at its tail, not at forkPoint
        Assert.Equal(["Stream 'copy2' already exists and is not this fork of 'src'; nothing was changed. Fork onto a new name, or delete 'copy2' first."], Lines(ontoOther.Error));
        Assert.Equal("shared|fork-only", await ReadTextAsync("copy"));
        Assert.Equal(0, viaCreate.ExitCode);
        Assert.Equal("shared|source-only", await ReadTextAsync("copy2"));
        Assert.Equal(3, missing.ExitCode);
    }

    [Fact]
    public async Task A_server_that_never_answers_fails_after_the_timeout_with_exit_code_5()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start(); // accepts connections (the kernel does) and never answers
        var url = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}";

        var run = await RunAsync(["head", "s", "--timeout", "100ms", "--url", url]);

        Assert.Equal(5, run.ExitCode);
        Assert.Equal($"No answer from the server at {url}/v1/stream/ within 100ms (--timeout).", Assert.Single(Lines(run.Error)));
    }

    [Fact]
    public async Task Verbose_logs_each_request_and_response_status_line_to_stderr()
    {
        var run = await RunAsync(["create", "loud", "--verbose"]);

        Assert.Equal(0, run.ExitCode);
        var lines = Lines(run.Error);
        Assert.Equal($"> PUT {Url}loud", lines[0]);
        Assert.StartsWith($"< 201 Created for PUT {Url}loud in ", lines[1], StringComparison.Ordinal);
        Assert.Equal("Created stream 'loud'.", lines[2]);
        Assert.Equal(3, lines.Length);
    }

    [Theory]
    [InlineData("[suggest:2]", "fo", "follow\nfork\ninfo")] // matching is by substring
    [InlineData("[suggest:17]", "read s --format p", "pretty")]
    [InlineData("[suggest:14]", "read s --live ", "long-poll\nsse")]
    [InlineData("[suggest:14]", "append s --pro", "--producer")]
    public async Task The_suggest_directive_completes_commands_options_and_values(string directive, string line, string expected)
    {
        var run = await RunLineAsync(directive, line);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(expected, run.Output.ReplaceLineEndings("\n").TrimEnd('\n'));
    }
}
