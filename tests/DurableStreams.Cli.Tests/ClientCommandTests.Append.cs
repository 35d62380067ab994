using System.Text;
using DurableStreams.Client;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>append --lines, --producer, --epoch, --close and their usage rules.</summary>
public sealed partial class ClientCommandTests
{
    [Fact]
    public async Task Append_lines_on_a_text_stream_keeps_every_line_with_its_newline_in_one_batch()
    {
        await _client.CreateAsync("lines", new CreateStreamOptions { ContentType = "text/plain" }, Token);

        var run = await RunAsync(["append", "lines", "--lines", "--verbose"], stdin: "one\ntwo\n\nthree");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("one\ntwo\n\nthree", await ReadTextAsync("lines"));
        Assert.Single(Lines(run.Error), line => line.StartsWith("> POST ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Append_lines_on_a_JSON_stream_makes_each_line_one_message_and_skips_blank_lines()
    {
        await _client.CreateAsync("jl", new CreateStreamOptions { ContentType = "application/json" }, Token);

        var run = await RunAsync(["append", "jl", "--lines", "--close", "--verbose"], stdin: "{\"a\":1}\r\n[1, 2]\n\n  \"x\"  \n");

        Assert.Equal(0, run.ExitCode);
        var read = await RunAsync(["read", "jl", "--format", "jsonl"]);
        Assert.Equal("{\"a\":1}\n[1,2]\n\"x\"\n", read.Stdout); // the array line stays one message
        Assert.True((await _client.GetMetadataAsync("jl", Token)).Closed);
        Assert.Single(Lines(run.Error), line => line.StartsWith("> POST ", StringComparison.Ordinal)); // closed with the batch
    }

    [Fact]
    public async Task Append_lines_names_the_first_invalid_JSON_line_and_appends_only_the_lines_before_it()
    {
        await _client.CreateAsync("bad", new CreateStreamOptions { ContentType = "application/json" }, Token);

        var run = await RunAsync(["append", "bad", "--lines"], stdin: "1\n2\n{oops\n4\n");

        Assert.Equal(1, run.ExitCode);
        var message = Assert.Single(Lines(run.Error));
        Assert.StartsWith("Line 3 is not one JSON value:", message, StringComparison.Ordinal);
        Assert.Contains("(at byte 2).", message, StringComparison.Ordinal); // a 1-based position, not .NET's text
        Assert.DoesNotContain("LineNumber", message, StringComparison.Ordinal);
        Assert.DoesNotContain("BytePositionInLine", message, StringComparison.Ordinal);
        Assert.Equal("1\n2\n", (await RunAsync(["read", "bad", "--format", "jsonl"])).Stdout);
    }

    [Fact]
    public async Task Append_lines_splits_large_input_into_batches_of_at_most_a_mebibyte()
    {
        await _client.CreateAsync("big", new CreateStreamOptions { ContentType = "text/plain" }, Token);
        var line = new string('x', 1023) + "\n";
        var input = string.Concat(Enumerable.Repeat(line, 3 * 1024)); // 3 MiB in 1 KiB lines

        var run = await RunAsync(["append", "big", "--lines", "--verbose"], stdin: input);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(3, Lines(run.Error).Count(l => l.StartsWith("> POST ", StringComparison.Ordinal)));
        Assert.Equal(input, await ReadTextAsync("big"));
    }

    [Fact]
    public async Task Append_lines_from_a_pipe_sends_what_has_arrived_when_the_input_pauses()
    {
        await _client.CreateAsync("piped", new CreateStreamOptions { ContentType = "text/plain" }, Token);
        var pipe = new System.IO.Pipelines.Pipe();
        await pipe.Writer.WriteAsync("first\n"u8.ToArray(), Token);
        await using var follow = _client.ReadAsync("piped", new ReadOptions { Live = LiveMode.LongPoll }, Token).GetAsyncEnumerator(Token);

        var append = RunAsync(["append", "piped", "--lines"], stdinStream: pipe.Reader.AsStream());

        Assert.True(await follow.MoveNextAsync()); // the first line arrives while the input stays open
        Assert.Equal("first\n", Encoding.UTF8.GetString(follow.Current.Data.Span));
        Assert.False(append.IsCompleted);
        await pipe.Writer.WriteAsync("second\n"u8.ToArray(), Token);
        await pipe.Writer.CompleteAsync();
        Assert.Equal(0, (await append).ExitCode);
        Assert.Equal("first\nsecond\n", await ReadTextAsync("piped"));
    }

    [Fact]
    public async Task Append_through_a_producer_is_exactly_once_per_epoch_and_closes_after_the_last_batch()
    {
        await _client.CreateAsync("prod", new CreateStreamOptions { ContentType = "application/json" }, Token);

        var first = await RunAsync(["append", "prod", "--producer", "cli", "--lines", "--print-offset"], stdin: "1\n2\n3\n");
        // The same producer and epoch again: the server has seen seq 0, so the batch is a duplicate and is dropped,
        // which is never silent: a warning and exit 4, or a note and exit 0 with --allow-replay.
        var replay = await RunAsync(["append", "prod", "--producer", "cli", "--lines"], stdin: "1\n2\n3\n");
        var allowed = await RunAsync(["append", "prod", "--producer", "cli", "--lines", "--allow-replay"], stdin: "1\n2\n3\n");
        var next = await RunAsync(["append", "prod", "--producer", "cli", "--epoch", "1", "--close"], stdin: "{\"n\":4}");

        Assert.Equal([0, ExitCodes.Conflict, 0, 0], new[] { first.ExitCode, replay.ExitCode, allowed.ExitCode, next.ExitCode });
        Assert.StartsWith("Warning: the server already had 1 batch(es) of this run from an earlier run of producer 'cli' at epoch 0", Assert.Single(Lines(replay.Error)), StringComparison.Ordinal);
        Assert.EndsWith("or pass --allow-replay to accept a replay.", Assert.Single(Lines(replay.Error)), StringComparison.Ordinal);
        Assert.StartsWith("Note: the server already had 1 batch(es)", Assert.Single(Lines(allowed.Error)), StringComparison.Ordinal);
        Assert.Equal("", next.Error);
        Assert.Equal("1\n2\n3\n{\"n\":4}\n", (await RunAsync(["read", "prod", "--format", "jsonl"])).Stdout);
        var metadata = await _client.GetMetadataAsync("prod", Token);
        Assert.True(metadata.Closed);
        Assert.NotEqual(metadata.NextOffset, Assert.Single(Lines(first.Error)));
    }

    [Fact]
    public async Task Append_through_a_producer_streams_binary_input_unchanged()
    {
        await _client.CreateAsync("blob", new CreateStreamOptions { ContentType = "application/octet-stream" }, Token);
        var bytes = new byte[700 * 1024];
        new Random(8).NextBytes(bytes);

        var run = await RunAsync(["append", "blob", "--producer", "bin"], stdinStream: new MemoryStream(bytes));

        Assert.Equal(0, run.ExitCode);
        var chunks = await _client.ReadAsync("blob", cancellationToken: Token).ToListAsync(Token);
        Assert.Equal(bytes, chunks.SelectMany(c => c.Data.ToArray()).ToArray());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Uploads_and_catch_up_reads_over_a_mebibyte_draw_a_progress_bar_only_on_a_terminal(bool terminal)
    {
        await _client.CreateAsync("large", new CreateStreamOptions { ContentType = "application/octet-stream" }, Token);
        var bytes = new byte[3 * 1024 * 1024];
        new Random(7).NextBytes(bytes);
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(file, bytes, Token);

            var upload = await RunAsync(["append", "large", "--file", file], terminal: terminal);
            var stdout = new MemoryStream();
            var read = await RunAsync(["read", "large"], stdout: stdout, terminal: terminal);

            Assert.Equal(0, upload.ExitCode);
            Assert.Equal(0, read.ExitCode);
            Assert.Equal(bytes, stdout.ToArray());
            if (terminal)
            {
                Assert.Contains("\rUploading [", upload.Error, StringComparison.Ordinal);
                Assert.Contains("/ 3.0 MiB", upload.Error, StringComparison.Ordinal);
                Assert.Contains("\rReading [", read.Error, StringComparison.Ordinal);
                Assert.EndsWith("\r", read.Error, StringComparison.Ordinal); // erased at the end
            }
            else
            {
                Assert.Equal("", upload.Error);
                Assert.Equal("", read.Error);
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("append", "s", "--lines", "--seq", "1")]
    [InlineData("append", "s", "--producer", "p", "--seq", "1")]
    [InlineData("append", "s", "--epoch", "1")]
    [InlineData("append", "s", "--allow-replay")]
    [InlineData("append", "s", "--producer", "p", "--epoch", "-1")]
    [InlineData("read", "s", "--max-messages", "0")]
    [InlineData("read", "s", "--format", "yaml")]
    [InlineData("follow", "s", "--follow")]
    [InlineData("head", "s", "--timeout", "0s")]
    public async Task Invalid_combinations_are_usage_errors(params string[] args)
    {
        var run = await RunLineAsync([.. args, "--url", Url]);

        Assert.Equal(2, run.ExitCode);
        Assert.NotEmpty(Lines(run.Error));
    }

    private async Task<string> ReadTextAsync(string stream) =>
        Encoding.UTF8.GetString((await _client.ReadAsync(stream, cancellationToken: Token).ToListAsync(Token)).SelectMany(c => c.Data.ToArray()).ToArray());
}
