using System.CommandLine;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>Runs <c>serve</c> in this process against a real socket, as <c>durable-streams serve</c> would.</summary>
public sealed partial class ServeInProcessTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly CancellationTokenSource _timeout;
    private readonly TempDirectory _directory = new();
    private readonly HttpClient _client = new();

    public ServeInProcessTests()
    {
        _timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        _timeout.CancelAfter(Timeout);
    }

    private CancellationToken Token => _timeout.Token;

    public void Dispose()
    {
        _client.Dispose();
        _directory.Dispose();
        _timeout.Dispose();
    }

    [Fact]
    public async Task Serve_prints_its_url_answers_http_and_exits_0_when_cancelled()
    {
        await using var serve = await RunningServe.StartAsync(["serve", "--memory", "--port", "0", "--long-poll-timeout", "500ms"], Token);

        Assert.Equal(IPAddress.Loopback.ToString(), serve.BaseUrl.Host);
        Assert.NotEqual(0, serve.BaseUrl.Port);
        Assert.Equal($"Streams: {serve.BaseUrl}v1/stream/", serve.StreamsLine);
        using (var request = new HttpRequestMessage(HttpMethod.Head, serve.Stream("no-such-stream")))
        using (var response = await _client.SendAsync(request, Token))
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        Assert.Equal(0, await serve.StopAsync(Token));
        Assert.Equal("Store: memory (streams are lost when the server stops)", Assert.Single(serve.ErrorLines));
    }

    [Fact]
    public async Task File_store_keeps_streams_across_a_restart_on_the_same_data_directory()
    {
        var dataDirectory = _directory.Combine("data");

        await using (var first = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory], Token))
        {
            using var create = await _client.PutAsync(first.Stream("kept"), Text(""), Token);
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
            foreach (var part in new[] { "hello, ", "world" })
            {
                using var append = await _client.PostAsync(first.Stream("kept"), Text(part), Token);
                Assert.True(append.IsSuccessStatusCode, $"append answered {(int)append.StatusCode}");
            }

            Assert.Equal(0, await first.StopAsync(Token));
            Assert.Equal($"Store: file {dataDirectory} (durability always)", Assert.Single(first.ErrorLines));
        }

        await using var second = await RunningServe.StartAsync(
            ["serve", "--port", "0", "-d", dataDirectory, "--durability", "interval", "--sync-interval", "50ms"], Token);
        using (var read = await _client.GetAsync(new Uri(second.Stream("kept") + "?offset=-1"), Token))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("hello, world", await read.Content.ReadAsStringAsync(Token));
        }

        Assert.Equal(0, await second.StopAsync(Token));
        Assert.Equal($"Store: file {dataDirectory} (durability interval, sync every 50ms)", Assert.Single(second.ErrorLines));
    }

    [Fact]
    public async Task A_relative_data_directory_is_reported_as_a_full_path()
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, _directory.Combine("relative"));

        await using var serve = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", relative, "--durability", "none"], Token);

        Assert.Equal(0, await serve.StopAsync(Token));
        Assert.Equal($"Store: file {_directory.Combine("relative")} (durability none)", Assert.Single(serve.ErrorLines));
        Assert.True(Directory.Exists(_directory.Combine("relative")));
    }

    [Fact]
    public async Task A_second_serve_on_a_data_directory_in_use_exits_1_naming_the_directory()
    {
        var dataDirectory = _directory.Combine("data");
        await using var first = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory], Token);

        var second = await RunAsync(["serve", "--port", "0", "--data-dir", dataDirectory]);

        Assert.Equal(1, second.ExitCode);
        Assert.Equal("", second.Output);
        Assert.Equal($"The data directory '{dataDirectory}' is in use by another process.", Assert.Single(Lines(second.Error)));

        // The first server is unaffected, and once it stops the directory is free again.
        using (var create = await _client.PutAsync(first.Stream("still-served"), Text(""), Token))
        {
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }

        Assert.Equal(0, await first.StopAsync(Token));
        await using var third = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory], Token);
        Assert.Equal(0, await third.StopAsync(Token));
    }

    [Fact]
    public async Task A_data_directory_that_is_a_file_exits_1_naming_the_directory()
    {
        var file = _directory.Combine("not-a-directory");
        await File.WriteAllTextAsync(file, "x", Token);

        var run = await RunAsync(["serve", "--port", "0", "--data-dir", file]);

        Assert.Equal(1, run.ExitCode);
        Assert.Equal("", run.Output);
        Assert.StartsWith($"Could not open the data directory '{file}': ", Assert.Single(Lines(run.Error)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unreadable_subscription_state_exits_1_naming_it_and_releases_the_data_directory()
    {
        var dataDirectory = _directory.Combine("data");
        Directory.CreateDirectory(dataDirectory);
        await File.WriteAllTextAsync(Path.Combine(dataDirectory, "subscriptions.json"), "{ torn", Token);

        var run = await RunAsync(["serve", "--port", "0", "--data-dir", dataDirectory]);

        Assert.Equal(1, run.ExitCode);
        Assert.StartsWith($"Could not open the subscription state in '{dataDirectory}': ", Lines(run.Error)[^1], StringComparison.Ordinal);
        await using var withoutSubscriptions = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory, "--no-subscriptions"], Token);
        Assert.Equal(0, await withoutSubscriptions.StopAsync(Token));
    }

    [Fact]
    public async Task A_taken_port_exits_1_and_releases_the_data_directory()
    {
        var dataDirectory = _directory.Combine("data");
        await using var first = await RunningServe.StartAsync(["serve", "--memory", "--port", "0"], Token);

        var run = await RunAsync(["serve", "--port", first.BaseUrl.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data-dir", dataDirectory]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("Could not start the server on 127.0.0.1:", run.Error, StringComparison.Ordinal);
        await using var second = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory], Token);
        Assert.Equal(0, await second.StopAsync(Token));
    }

    [Fact]
    public async Task Turning_the_registry_on_for_a_data_directory_with_streams_lists_them()
    {
        var dataDirectory = _directory.Combine("data");
        await using (var without = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory], Token))
        {
            foreach (var name in new[] { "orders", "logs/app" })
            {
                using var put = await _client.PutAsync(without.Stream(name), Text(""), Token);
                Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            }

            Assert.Equal(0, await without.StopAsync(Token));
        }

        await using var with = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory, "--registry"], Token);
        var url = with.BaseUrl.ToString();
        var ls = await RunAsync(["ls", "--url", url]);
        using (var put = await _client.PutAsync(with.Stream("later"), Text(""), Token))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }
        var after = await RunAsync(["ls", "--url", url]);

        Assert.Equal(0, ls.ExitCode);
        Assert.Equal(["logs/app", "orders"], Lines(ls.Output).Order(StringComparer.Ordinal));
        Assert.Equal(["later", "logs/app", "orders"], Lines(after.Output).Order(StringComparer.Ordinal));
        Assert.Equal(0, await with.StopAsync(Token));
    }

    private static StringContent Text(string text) => new(text, Encoding.UTF8, "text/plain");

    private Task<(int ExitCode, string Output, string Error)> RunAsync(string[] args) => CliRun.InvokeAsync(args, Token);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [GeneratedRegex(@"^Durable Streams server listening on (?<url>http://[^\s/]+)$")]
    private static partial Regex ListeningLine();

    [Fact]
    public async Task Subscriptions_and_the_signing_key_survive_a_restart_and_no_subscriptions_turns_the_API_off()
    {
        var dataDirectory = _directory.Combine("data");
        string kid;

        await using (var first = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory], Token))
        {
            kid = await ReadKidAsync(first);
            using var put = await _client.PutAsync(first.Stream("__ds/subscriptions/kept"),
                new StringContent("""{"type":"pull-wake","pattern":"jobs/*","wake_stream":"wake/pool"}""", Encoding.UTF8, "application/json"), Token);
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            Assert.Equal(0, await first.StopAsync(Token));
        }

        await using (var second = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory], Token))
        {
            Assert.Equal(kid, await ReadKidAsync(second));
            using var get = await _client.GetAsync(second.Stream("__ds/subscriptions/kept"), Token);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(0, await second.StopAsync(Token));
        }

        await using var off = await RunningServe.StartAsync(["serve", "--port", "0", "--data-dir", dataDirectory, "--no-subscriptions"], Token);
        using (var jwks = await _client.GetAsync(off.Stream("__ds/jwks.json"), Token))
        {
            Assert.Equal(HttpStatusCode.NotFound, jwks.StatusCode);
        }
        Assert.Equal(0, await off.StopAsync(Token));
    }

    private async Task<string> ReadKidAsync(RunningServe serve)
    {
        using var response = await _client.GetAsync(serve.Stream("__ds/jwks.json"), Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var document = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(Token));
        return Assert.Single(document.RootElement.GetProperty("keys").EnumerateArray().ToArray()).GetProperty("kid").GetString()!;
    }

    /// <summary>A <c>serve</c> invocation running in this process until <see cref="StopAsync"/> cancels it.</summary>
    private sealed class RunningServe : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop;
        private readonly LineChannelWriter _output;
        private readonly StringWriter _error;
        private readonly Task<int> _run;

        private RunningServe(CancellationTokenSource stop, LineChannelWriter output, StringWriter error, Task<int> run)
        {
            _stop = stop;
            _output = output;
            _error = error;
            _run = run;
        }

        public Uri BaseUrl { get; private set; } = null!;

        public string StreamsLine { get; private set; } = null!;

        public string[] ErrorLines => Lines(_error.ToString());

        public static async Task<RunningServe> StartAsync(string[] args, CancellationToken cancellationToken)
        {
            var stop = new CancellationTokenSource();
            var output = new LineChannelWriter();
            var error = new StringWriter();
            var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
            var serve = new RunningServe(stop, output, error, CommandLineRunner.InvokeAsync(args, configuration, stop.Token));
            try
            {
                var firstLine = output.Lines.ReadAsync(cancellationToken).AsTask();
                if (await Task.WhenAny(firstLine, serve._run) != firstLine)
                {
                    Assert.Fail($"serve exited with code {await serve._run} before listening. Error output: {error}");
                }

                var listening = await firstLine;
                var match = ListeningLine().Match(listening);
                Assert.True(match.Success, $"Unexpected first line: '{listening}'. Error output: {error}");
                serve.BaseUrl = new Uri(match.Groups["url"].Value + "/");
                serve.StreamsLine = await output.Lines.ReadAsync(cancellationToken);
                return serve;
            }
            catch
            {
                await serve.DisposeAsync();
                throw;
            }
        }

        public Uri Stream(string name) => new(BaseUrl, "v1/stream/" + name);

        /// <summary>The next line of standard output after the listening and streams lines.</summary>
        public ValueTask<string> ReadLineAsync(CancellationToken cancellationToken) => _output.Lines.ReadAsync(cancellationToken);

        /// <summary>Cancels the invocation as Ctrl+C would and returns its exit code.</summary>
        public async Task<int> StopAsync(CancellationToken cancellationToken)
        {
            await _stop.CancelAsync();
            return await _run.WaitAsync(cancellationToken);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _run.WaitAsync(Timeout);
            }
            finally
            {
                _stop.Dispose();
                _output.Dispose();
                _error.Dispose();
            }
        }
    }

    /// <summary>Publishes each complete line written to it, so a test can wait for a line instead of polling.</summary>
    private sealed class LineChannelWriter : TextWriter
    {
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly StringBuilder _current = new();
        private readonly Lock _gate = new();

        public ChannelReader<string> Lines => _lines.Reader;

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_gate)
            {
                if (value == '\n')
                {
                    _lines.Writer.TryWrite(_current.ToString().TrimEnd('\r'));
                    _current.Clear();
                }
                else
                {
                    _current.Append(value);
                }
            }
        }
    }
}
