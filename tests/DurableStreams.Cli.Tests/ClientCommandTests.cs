using System.CommandLine;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DurableStreams.Client;
using DurableStreams.Server;
using DurableStreams.Core.Memory;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>Runs the client commands in this process against an in-process server (memory store) on a free port.</summary>
public sealed partial class ClientCommandTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly CancellationTokenSource _timeout;
    private readonly ObservedStore _store = new(new MemoryStreamStore());
    private readonly DurableStreamServer _server;
    private DurableStreamClient _client = null!;

    public ClientCommandTests()
    {
        _timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        _timeout.CancelAfter(Timeout);
        _server = new(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = _store });
    }

    private CancellationToken Token => _timeout.Token;

    private string Url => _server.StreamsUrl.ToString();

    public async ValueTask InitializeAsync()
    {
        await _server.StartAsync(Token);
        _client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = _server.StreamsUrl });
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
        await _store.DisposeAsync();
        _timeout.Dispose();
    }

    [Fact]
    public async Task Create_then_append_from_argument_file_and_stdin_then_read_returns_the_bytes()
    {
        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, "from-file|", Token);

            Assert.Equal(0, (await RunAsync(["create", "logs", "--content-type", "text/plain", "initial|"])).ExitCode);
            Assert.Equal(0, (await RunAsync(["append", "logs", "from-arg|"])).ExitCode);
            Assert.Equal(0, (await RunAsync(["write", "logs", "--file", file])).ExitCode);
            var fromStdin = await RunAsync(["append", "logs", "--print-offset"], stdin: "from-stdin");
            Assert.Equal(0, fromStdin.ExitCode);
            Assert.Equal("", fromStdin.Output);
            var tail = Assert.Single(Lines(fromStdin.Error));

            var read = await RunAsync(["read", "logs", "--print-offset"]);

            Assert.Equal(0, read.ExitCode);
            Assert.Equal("initial|from-arg|from-file|from-stdin", read.Stdout);
            Assert.Equal(tail, Assert.Single(Lines(read.Error)));
            Assert.Equal("text/plain", (await _client.GetMetadataAsync("logs", Token)).ContentType);

            var fromTail = await RunAsync(["read", "logs", "--offset", tail]);
            Assert.Equal(0, fromTail.ExitCode);
            Assert.Equal("", fromTail.Stdout);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Json_stream_reads_back_one_message_per_line_with_format_jsonl()
    {
        Assert.Equal(0, (await RunAsync(["create", "events", "--json"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["append", "events", """{"n":1}"""])).ExitCode);
        Assert.Equal(0, (await RunAsync(["append", "events", "--json"], stdin: """[{"n":2},{"n":3}]""")).ExitCode);

        var read = await RunAsync(["read", "events", "--format", "jsonl"]);

        Assert.Equal(0, read.ExitCode);
        Assert.Equal("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n", read.Stdout);
        Assert.Equal("", read.Error);
    }

    [Fact]
    public async Task Head_prints_aligned_metadata_or_json()
    {
        Assert.Equal(0, (await RunAsync(["create", "meta", "--json", "--ttl", "1h", "[1]"])).ExitCode);
        var tail = (await _client.GetMetadataAsync("meta", Token)).NextOffset;
        const string zero = "0000000000000000_0000000000000000";

        var head = await RunAsync(["head", "meta"]);
        var info = await RunAsync(["info", "meta", "--json"]);

        Assert.Equal(0, head.ExitCode);
        Assert.Equal(
            [
                "Stream:         meta",
                "Content-Type:   application/json",
                $"Next-Offset:    {tail}",
                $"Retained-Start: {zero}",
                "Closed:         no",
                "TTL:            1h",
            ],
            head.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Equal(0, info.ExitCode);
        Assert.Equal(
            $$"""{"stream":"meta","contentType":"application/json","nextOffset":"{{tail}}","retainedStart":"{{zero}}","generation":0,"closed":false,"ttlSeconds":3600,"expiresAt":null}""",
            info.Output.Trim());
    }

    [Fact]
    public async Task Append_to_a_closed_stream_exits_4_with_one_error_line()
    {
        Assert.Equal(0, (await RunAsync(["create", "done", "--content-type", "text/plain"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["close", "done"])).ExitCode);

        var append = await RunAsync(["append", "done", "late"]);

        Assert.Equal(4, append.ExitCode);
        Assert.StartsWith("Stream 'done' is closed", Assert.Single(Lines(append.Error)), StringComparison.Ordinal);
        Assert.True((await _client.GetMetadataAsync("done", Token)).Closed);
    }

    [Fact]
    public async Task Missing_or_deleted_stream_exits_3()
    {
        var missing = await RunAsync(["read", "no-such-stream"]);
        Assert.Equal(3, missing.ExitCode);
        Assert.Equal($"No stream 'no-such-stream' at {Url}.", Assert.Single(Lines(missing.Error)));
        Assert.Equal("", missing.Stdout);

        Assert.Equal(0, (await RunAsync(["create", "short-lived"])).ExitCode);
        Assert.Equal(0, (await RunAsync(["delete", "short-lived"])).ExitCode);
        var head = await RunAsync(["head", "short-lived"]);
        Assert.Equal(3, head.ExitCode);
    }

    [Fact]
    public async Task Unreachable_server_exits_5()
    {
        int port;
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        }

        var run = await RunAsync(["head", "anything", "--url", $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}"]);

        Assert.Equal(5, run.ExitCode);
        Assert.StartsWith($"Could not reach the server at http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/v1/stream/", Assert.Single(Lines(run.Error)), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("long-poll")]
    [InlineData("sse")]
    public async Task Read_follow_tails_new_data_and_ends_when_another_writer_closes_the_stream(string live)
    {
        await _client.CreateAsync("tail", new CreateStreamOptions { ContentType = "text/plain", Body = "first|"u8.ToArray() }, Token);
        var stdout = new SignalingStream();

        var follow = RunAsync(["read", "tail", "-f", "--live", live], stdout: stdout);
        await stdout.FirstWrite.WaitAsync(Token);
        Assert.False(follow.IsCompleted);
        await _client.AppendAsync("tail", "second", "text/plain", cancellationToken: Token);
        Assert.Equal(0, (await RunAsync(["close", "tail"])).ExitCode);
        var run = await follow.WaitAsync(Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("first|second", run.Stdout);
        Assert.Equal("", run.Error);
    }

    [Fact]
    public async Task Usage_errors_exit_2()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };

        Assert.Equal(2, await CommandLineRunner.InvokeAsync(["read", "s", "--live", "sse", "--url", Url], configuration, Token));
        Assert.Equal(2, await CommandLineRunner.InvokeAsync(["create", "s", "--json", "--content-type", "text/plain", "--url", Url], configuration, Token));
        Assert.Equal(2, await CommandLineRunner.InvokeAsync(["create", "s", "--ttl", "500ms", "--url", Url], configuration, Token));
        Assert.Equal(2, await CommandLineRunner.InvokeAsync(["head", "s", "--url", "ftp://example"], configuration, Token));
        Assert.Equal(4, Lines(error.ToString()).Length);
    }

    [Theory]
    [InlineData("http://127.0.0.1:4437", "http://127.0.0.1:4437/v1/stream/")]
    [InlineData("http://127.0.0.1:4437/", "http://127.0.0.1:4437/v1/stream/")]
    [InlineData("http://127.0.0.1:4437/v1/stream", "http://127.0.0.1:4437/v1/stream/")]
    [InlineData("http://127.0.0.1:4437/v1/stream/", "http://127.0.0.1:4437/v1/stream/")]
    [InlineData("https://example.test/base", "https://example.test/base/v1/stream/")]
    public void Url_is_normalised_to_the_streams_root_once(string given, string expected)
    {
        Assert.True(ClientOptions.TryNormalizeUrl(given, out var url));
        Assert.Equal(expected, url.ToString());
    }

    [Theory]
    [InlineData("http://127.0.0.1:8787", "/", "http://127.0.0.1:8787/")]
    [InlineData("http://127.0.0.1:8787/", "/", "http://127.0.0.1:8787/")]
    [InlineData("https://example.test/streams", "/", "https://example.test/streams/")]
    [InlineData("http://127.0.0.1:8787", "/api/streams/", "http://127.0.0.1:8787/api/streams/")]
    [InlineData("http://127.0.0.1:8787/api/streams", "/api/streams", "http://127.0.0.1:8787/api/streams/")]
    public void Streams_path_replaces_v1_stream_and_slash_takes_the_url_as_given(string given, string streamsPath, string expected)
    {
        Assert.True(ClientOptions.TryNormalizeUrl(given, streamsPath, out var url));
        Assert.Equal(expected, url.ToString());
    }

    [Fact]
    public async Task A_full_stream_url_as_the_argument_is_used_as_given_whatever_url_says()
    {
        await _client.CreateAsync("full", new CreateStreamOptions { ContentType = "text/plain", Body = "whole"u8.ToArray() }, Token);
        var streamUrl = _server.StreamsUrl + "full";
        const string elsewhere = "http://127.0.0.1:9/other";

        var read = await RunAsync(["read", streamUrl, "--url", elsewhere]);
        var append = await RunAsync(["append", streamUrl, "|more", "--url", elsewhere]);
        var follow = await RunAsync(["follow", streamUrl, "--live", "sse", "--max-bytes", "10", "--url", elsewhere]);
        var head = await RunAsync(["head", streamUrl, "--json", "--url", elsewhere]);

        Assert.Equal("whole", read.Stdout);
        Assert.Equal(0, append.ExitCode);
        Assert.Equal("whole|more", follow.Stdout);
        Assert.Contains("text/plain", head.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Streams_path_slash_and_STREAM_PATH_take_the_url_as_the_streams_root()
    {
        // A server whose streams are not under /v1/stream: --url http://host:port/streams must be taken as given.
        await using var elsewhere = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = new MemoryStreamStore(), StreamsPath = "/streams" });
        await elsewhere.StartAsync(Token);
        using (var client = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = elsewhere.StreamsUrl }))
        {
            await client.CreateAsync("rooted", new CreateStreamOptions { ContentType = "text/plain", Body = "at root"u8.ToArray() }, Token);
        }
        var root = new Uri(elsewhere.BaseUrl, "streams").ToString();
        var environment = new Dictionary<string, string> { ["STREAM_PATH"] = "/" };
        var factory = new CommandFactory(new ClientConsole { GetEnvironmentVariable = name => environment.GetValueOrDefault(name) });

        var read = await RunAsync(["read", "rooted", "--url", root, "--streams-path", "/"]);
        var withDefault = await RunAsync(["read", "rooted", "--url", root]);
        var parsed = factory.CreateRootCommand().Parse(["head", "s"]);
        var invalid = factory.CreateRootCommand().Parse(["read", "rooted", "--streams-path", "v1"]);

        Assert.Equal("at root", read.Stdout);
        Assert.Equal(ExitCodes.NotFound, withDefault.ExitCode); // /streams/v1/stream/rooted
        Assert.Equal("/", parsed.GetValue(factory.Client.StreamsPath));
        Assert.Equal("Invalid value 'v1' for --streams-path: expected a path starting with '/', such as /v1/stream or /.", Assert.Single(invalid.Errors).Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not a url")]
    [InlineData("ftp://example.test/")]
    [InlineData("/v1/stream")]
    public void Url_that_is_not_absolute_http_is_rejected(string given) =>
        Assert.False(ClientOptions.TryNormalizeUrl(given, out _));

    [Fact]
    public void Url_and_auth_default_from_the_environment_else_localhost()
    {
        var environment = new Dictionary<string, string> { ["STREAM_URL"] = "http://127.0.0.1:9", ["STREAM_AUTH"] = "Bearer t" };
        var withEnvironment = new CommandFactory(new ClientConsole { GetEnvironmentVariable = name => environment.GetValueOrDefault(name) });
        var without = new CommandFactory(new ClientConsole { GetEnvironmentVariable = _ => null });

        var parsed = withEnvironment.CreateRootCommand().Parse(["head", "s"]);
        var defaulted = without.CreateRootCommand().Parse(["head", "s"]);

        Assert.Equal("http://127.0.0.1:9", parsed.GetValue(withEnvironment.Client.Url));
        Assert.Equal("Bearer t", parsed.GetValue(withEnvironment.Client.Auth));
        Assert.Equal("http://localhost:4437/v1/stream", defaulted.GetValue(without.Client.Url));
        Assert.Null(defaulted.GetValue(without.Client.Auth));
    }

    /// <param name="args">The command line; <c>--url</c> of the test server is added unless given.</param>
    /// <param name="stdin">Standard input as text, or null when the command must not read it.</param>
    /// <param name="stdout">Captures standard output (raw bytes); a fresh one by default.</param>
    /// <param name="stdinStream">Standard input as a stream (instead of <paramref name="stdin"/>).</param>
    /// <param name="terminal">Whether standard error counts as a terminal (progress bars).</param>
    /// <param name="ctrlC">Cancelling it acts as Ctrl+C does on the real process.</param>
    /// <param name="stdinTerminal">Whether standard input counts as a terminal.</param>
    private async Task<Run> RunAsync(
        string[] args,
        string? stdin = null,
        MemoryStream? stdout = null,
        Stream? stdinStream = null,
        bool terminal = false,
        CancellationTokenSource? ctrlC = null,
        bool stdinTerminal = false)
    {
        stdout ??= new MemoryStream();
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = new ClientConsole
        {
            OpenStandardInput = () => stdinStream ?? new MemoryStream(Encoding.UTF8.GetBytes(stdin ?? throw new InvalidOperationException("The command read stdin."))),
            OpenStandardOutput = () => stdout,
            GetEnvironmentVariable = _ => null,
            IsErrorTerminal = () => terminal,
            IsOutputTerminal = () => terminal,
            IsInputTerminal = () => stdinTerminal,
        };
        var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };

        var parseResult = new CommandFactory(console).CreateRootCommand().Parse(args.Contains("--url") ? args : [.. args, "--url", Url]);
        Assert.False(parseResult.Action is ParseErrorAction, string.Join(Environment.NewLine, parseResult.Errors.Select(e => e.Message)));
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(Token, ctrlC?.Token ?? CancellationToken.None);
        var exitCode = await parseResult.InvokeAsync(configuration, cancellation.Token).WaitAsync(Token);

        return new Run(exitCode, output.ToString(), error.ToString(), Encoding.UTF8.GetString(stdout.ToArray()));
    }

    /// <summary>Runs a command line through <see cref="CommandLineRunner"/> (as the process does), for usage errors and directives.</summary>
    private Task<(int ExitCode, string Output, string Error)> RunLineAsync(params string[] args) => CliRun.InvokeAsync(args, Token);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private sealed record Run(int ExitCode, string Output, string Error, string Stdout);

    /// <summary>Standard output that reports its first non-empty write, so a test can wait for it instead of sleeping.</summary>
    private sealed class SignalingStream : MemoryStream
    {
        private readonly TaskCompletionSource _firstWrite = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task FirstWrite => _firstWrite.Task;

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await base.WriteAsync(buffer, cancellationToken);
            if (!buffer.IsEmpty)
            {
                _firstWrite.TrySetResult();
            }
        }
    }
}
