using System.Net;
using System.Net.Sockets;
using System.Text;
using DurableStreams.Server.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>
/// Buffered request bodies: the process-wide budget (503 with Retry-After), the minimum upload rate over each window
/// (a stalled upload is cut off with 408 whatever it sent before), and malformed bodies (400, logged at Debug).
/// </summary>
public sealed class RequestBodyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Bodies of 50,000 bytes take a 64 KiB buffer each; a 96 KiB budget holds one of them at a time.</summary>
    private const int BodyBytes = 50_000;

    private static void SmallBudget(DurableStreamServerOptions options)
    {
        options.MaxAppendBytes = 64 * 1024;
        options.MaxBufferedBodyBytes = 96 * 1024;
    }

    [Fact]
    public async Task An_upload_that_would_take_the_buffered_body_budget_over_its_limit_gets_503_with_Retry_After_until_the_holder_finishes()
    {
        await using var harness = await ServerHarness.StartAsync(SmallBudget, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", null, Ct);

        // The holder's buffer is reserved before its body is read, so "100 Continue" means it holds the budget.
        using var holder = await RawConnection.OpenAsync(harness, Ct);
        await holder.SendAsync($"POST {harness.Url(name).AbsolutePath} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {BodyBytes}\r\nExpect: 100-continue\r\n\r\n", Ct);
        Assert.StartsWith("HTTP/1.1 100", await holder.ReceiveUntilAsync("\r\n\r\n", Ct), StringComparison.Ordinal);

        using (var refused = await harness.PostAsync(name, "text/plain", new string('b', BodyBytes), Ct))
        {
            Assert.Contains("buffering too many request bodies", await Http.ErrorAsync(refused, HttpStatusCode.ServiceUnavailable), StringComparison.Ordinal);
            Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
        }

        await holder.SendAsync(new string('a', BodyBytes), Ct);
        Assert.StartsWith("HTTP/1.1 204", await holder.ReceiveUntilAsync("\r\n\r\n", Ct), StringComparison.Ordinal);
        await harness.AppendAsync(name, "text/plain", new string('c', BodyBytes), Ct);

        var (body, _) = await harness.ReadAllAsync(name, Ct);
        Assert.Equal(new string('a', BodyBytes) + new string('c', BodyBytes), body);
    }

    [Fact]
    public async Task A_chunked_upload_is_refused_with_503_once_it_grows_past_the_budget_and_leaves_the_stream_unchanged()
    {
        await using var harness = await ServerHarness.StartAsync(SmallBudget, cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", "before", Ct);
        using var holder = await RawConnection.OpenAsync(harness, Ct);
        await holder.SendAsync($"POST {harness.Url(name).AbsolutePath} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {BodyBytes}\r\nExpect: 100-continue\r\n\r\n", Ct);
        Assert.StartsWith("HTTP/1.1 100", await holder.ReceiveUntilAsync("\r\n\r\n", Ct), StringComparison.Ordinal);

        // No Content-Length: the budget is taken as the body grows (16, 32, then 64 KiB, which no longer fits).
        using var refused = await harness.SendAsync(HttpMethod.Post, name, new ChunkedContent(Encoding.ASCII.GetBytes(new string('b', BodyBytes)), "text/plain"), Ct);

        await Http.ErrorAsync(refused, HttpStatusCode.ServiceUnavailable);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal("before", (await harness.ReadAllAsync(name, Ct)).Body);
    }

    [Fact]
    public async Task An_upload_that_stalls_after_a_fast_start_is_cut_off_with_408_and_acknowledged_data_stays_intact()
    {
        await using var harness = await ServerHarness.StartWithFakeClockAsync(cancellationToken: Ct);
        var name = ServerHarness.NewName();
        await harness.CreateAsync(name, "text/plain", "acknowledged", Ct);
        using var upload = await RawConnection.OpenAsync(harness, Ct);
        await upload.SendAsync($"POST {harness.Url(name).AbsolutePath} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n", Ct);
        // Far more than the minimum rate for the first window (and, averaged, for the next 40 s), then nothing.
        await upload.SendAsync(new string('x', 10_000), Ct);

        // Windows pass on the server's clock until it gives up on the stalled body; the wait is bounded by the test's
        // real-time limit (Kestrel's own check, averaged over the request, would not fire for 40 s).
        var answer = upload.ReceiveToEndAsync(Ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(15));
        while (!answer.IsCompleted)
        {
            harness.FakeTime.Advance(TimeSpan.FromSeconds(1));
            await Task.WhenAny(answer, Task.Delay(TimeSpan.FromMilliseconds(20), deadline.Token));
            deadline.Token.ThrowIfCancellationRequested();
        }

        var response = await answer;
        Assert.StartsWith("HTTP/1.1 408", response, StringComparison.Ordinal);
        Assert.Contains("Connection: close", response, StringComparison.OrdinalIgnoreCase);
        var (body, next) = await harness.ReadAllAsync(name, Ct);
        Assert.Equal("acknowledged", body);
        Assert.Equal(Http.Offset(12), next);
        await harness.AppendAsync(name, "text/plain", "!", Ct);
    }

    public static TheoryData<string, string> MalformedBodies => new()
    {
        { "s", "ffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n" },
        { "s", "zz\r\nhello\r\n0\r\n\r\n" },
        { "__ds/subscriptions/sub-1", "ffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n" },
    };

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public async Task A_bad_chunk_size_is_400_and_logs_nothing_at_Error(string path, string chunkedBody)
    {
        var logs = new CapturingLoggerProvider();
        using var factory = logs.CreateFactory();
        await using var server = new DurableStreamServer(new DurableStreamServerOptions { Port = 0, EnableSubscriptions = true }, factory);
        await server.StartAsync(Ct);
        using (var client = new HttpClient { BaseAddress = server.StreamsUrl, Timeout = ServerHarness.RequestTimeout })
        using (var created = await client.PutAsync(new Uri("s", UriKind.Relative), ServerHarness.Body("text/plain", "kept"), Ct))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }
        using var connection = new RawConnection(server.Port);
        await connection.ConnectAsync(Ct);

        await connection.SendAsync($"{(path == "s" ? "POST" : "PUT")} /v1/stream/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {(path == "s" ? "text/plain" : "application/json")}\r\nTransfer-Encoding: chunked\r\n\r\n{chunkedBody}", Ct);
        var response = await connection.ReceiveUntilAsync("\r\n\r\n", Ct);

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("request body refused with 400", StringComparison.Ordinal));
    }

    /// <summary>An HTTP/1.1 connection driven byte by byte.</summary>
    private sealed class RawConnection(int port) : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly StringBuilder _received = new();

        public static async Task<RawConnection> OpenAsync(ServerHarness harness, CancellationToken cancellationToken)
        {
            var connection = new RawConnection(harness.Server.Port);
            await connection.ConnectAsync(cancellationToken);
            return connection;
        }

        public Task ConnectAsync(CancellationToken cancellationToken) => _socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken).AsTask();

        public async Task SendAsync(string text, CancellationToken cancellationToken) =>
            await _socket.SendAsync(Encoding.ASCII.GetBytes(text), cancellationToken);

        /// <summary>Everything received up to and including <paramref name="marker"/>, consumed.</summary>
        public async Task<string> ReceiveUntilAsync(string marker, CancellationToken cancellationToken)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(ServerHarness.RequestTimeout);
            var buffer = new byte[4096];
            while (true)
            {
                var text = _received.ToString();
                var at = text.IndexOf(marker, StringComparison.Ordinal);
                if (at >= 0)
                {
                    _received.Remove(0, at + marker.Length);
                    return text[..(at + marker.Length)];
                }
                var read = await _socket.ReceiveAsync(buffer, timeout.Token);
                if (read == 0)
                {
                    return text;
                }
                _received.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
        }

        /// <summary>Everything until the server closes the connection.</summary>
        public async Task<string> ReceiveToEndAsync(CancellationToken cancellationToken)
        {
            var buffer = new byte[4096];
            int read;
            while ((read = await _socket.ReceiveAsync(buffer, cancellationToken)) > 0)
            {
                _received.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
            return _received.ToString();
        }

        public void Dispose() => _socket.Dispose();
    }
}
