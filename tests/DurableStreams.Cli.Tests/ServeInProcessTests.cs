using System.CommandLine;
using System.Net;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using Xunit;

namespace DurableStreams.Cli.Tests;

/// <summary>Runs <c>serve</c> in this process against a real socket, as <c>durable-streams serve</c> would.</summary>
public sealed partial class ServeInProcessTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Serve_prints_its_url_answers_http_and_exits_0_when_cancelled()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(Timeout);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        using var output = new LineChannelWriter();
        using var error = new StringWriter();
        var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };

        var run = CommandLineRunner.InvokeAsync(["serve", "--port", "0", "--long-poll-timeout", "500ms"], configuration, stop.Token);

        var listening = await output.Lines.ReadAsync(timeout.Token);
        var match = ListeningLine().Match(listening);
        Assert.True(match.Success, $"Unexpected first line: '{listening}'. Error output: {error}");
        var baseUrl = new Uri(match.Groups["url"].Value);
        Assert.Equal(IPAddress.Loopback.ToString(), baseUrl.Host);
        Assert.NotEqual(0, baseUrl.Port);
        Assert.Equal($"Streams: {baseUrl}v1/stream/", await output.Lines.ReadAsync(timeout.Token));

        using (var client = new HttpClient())
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, new Uri(baseUrl, "v1/stream/no-such-stream"));
            using var response = await client.SendAsync(request, timeout.Token);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        await stop.CancelAsync();
        var exitCode = await run.WaitAsync(timeout.Token);

        Assert.Equal(0, exitCode);
        Assert.Contains("Store: memory", error.ToString(), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^Durable Streams server listening on (?<url>http://[^\s/]+)$")]
    private static partial Regex ListeningLine();

    /// <summary>Publishes each complete line written to it, so a test can wait for a line instead of polling.</summary>
    private sealed class LineChannelWriter : TextWriter
    {
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly System.Text.StringBuilder _current = new();
        private readonly Lock _gate = new();

        public ChannelReader<string> Lines => _lines.Reader;

        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

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
