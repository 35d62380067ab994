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
    public async Task Plain_HTTP_to_an_HTTPS_port_says_the_server_speaks_HTTPS()
    {
        using var directory = new DurableStreams.Testing.TempDirectory();
        var (certificatePath, keyPath) = DurableStreams.Testing.SelfSignedPem.Write(directory);
        await using var server = new DurableStreamServer(new DurableStreamServerOptions
        {
            Host = "127.0.0.1",
            Port = 0,
            TlsCertificatePath = certificatePath,
            TlsKeyPath = keyPath,
        });
        await server.StartAsync(Token);
        var plain = new UriBuilder(server.StreamsUrl) { Scheme = "http" }.Uri.ToString();

        var run = await RunAsync(["head", "anything", "--url", plain]);

        Assert.Equal(ExitCodes.Unreachable, run.ExitCode);
        var message = Assert.Single(Lines(run.Error));
        Assert.Contains("the server is not speaking plain HTTP on this port", message, StringComparison.Ordinal);
        Assert.Contains($"try https://{server.BaseUrl.Authority}", message, StringComparison.Ordinal);
        Assert.DoesNotContain("An error occurred while sending the request", message, StringComparison.Ordinal);
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
        Assert.Contains("the limit of 16 bytes", message, StringComparison.Ordinal);
        // Named once: the server's message names the option, so the tool adds no second hint.
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(message, "--max-append-bytes"));
    }

    [Fact]
    public async Task Append_from_a_terminal_says_it_reads_stdin_and_Ctrl_C_stops_a_pending_read_at_once()
    {
        await _client.CreateAsync("typed", new CreateStreamOptions { ContentType = "text/plain" }, Token);
        using var ctrlC = new CancellationTokenSource();
        var keyboard = new SilentKeyboard();

        var append = RunAsync(["append", "typed"], stdinStream: keyboard, ctrlC: ctrlC, stdinTerminal: true);
        await keyboard.Reading.WaitAsync(Token);
        await ctrlC.CancelAsync();
        var run = await append;

        Assert.Equal(ExitCodes.Error, run.ExitCode);
        Assert.Equal(
            ["Reading the content from standard input; end it with Ctrl+D (Ctrl+Z then Enter on Windows), or Ctrl+C to cancel.", "Cancelled."],
            Lines(run.Error));
        var piped = await RunAsync(["append", "typed", "--print-offset"], stdin: "x");
        Assert.DoesNotContain("standard input", piped.Error, StringComparison.Ordinal); // only on a terminal
    }

    /// <summary>A terminal nobody types on: a read never completes and, like a real terminal read, ignores cancellation.</summary>
    private sealed class SilentKeyboard : Stream
    {
        private readonly TaskCompletionSource _reading = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Reading => _reading.Task;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _reading.TrySetResult();
            return new(new TaskCompletionSource<int>().Task);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task Create_says_whether_it_created_or_found_the_stream()
    {
        var first = await RunAsync(["create", "said", "--json"]);
        var same = await RunAsync(["create", "said", "--json"]);
        var other = await RunAsync(["create", "said", "--content-type", "text/plain"]);

        Assert.Equal([0, 0, ExitCodes.Conflict], new[] { first.ExitCode, same.ExitCode, other.ExitCode });
        Assert.Equal(["Created stream 'said'."], Lines(first.Error));
        Assert.Equal(["Stream 'said' already exists with these settings; nothing was changed."], Lines(same.Error));
        Assert.StartsWith("Conflict on stream 'said'", Assert.Single(Lines(other.Error)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("read")]
    [InlineData("head")]
    [InlineData("append", "x")]
    [InlineData("close")]
    [InlineData("delete")]
    [InlineData("follow", "--max-retries", "0")]
    public async Task Not_found_has_one_wording_on_every_command(string command, params string[] more)
    {
        var run = await RunAsync([command, "nowhere", .. more]);

        Assert.Equal(ExitCodes.NotFound, run.ExitCode);
        Assert.Contains($"No stream 'nowhere' at {Url}.", Lines(run.Error));
    }
}
