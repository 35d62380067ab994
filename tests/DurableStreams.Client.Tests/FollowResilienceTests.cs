using System.Net;
using System.Text;
using System.Threading.Channels;
using DurableStreams.Client.Tests.Infrastructure;
using DurableStreams.Core;
using DurableStreams.Server;
using DurableStreams.Core.Memory;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>
/// Following reads survive what a long-lived reader meets (server restarts, dropped connections, 503/429 with
/// Retry-After, SSE reconnects) and resume from the last offset delivered; they end clearly when the budget runs out.
/// </summary>
public sealed class FollowResilienceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(LiveMode.LongPoll, false)]
    [InlineData(LiveMode.Sse, false)]
    [InlineData(LiveMode.LongPoll, true)]
    [InlineData(LiveMode.Sse, true)]
    [InlineData(LiveMode.Auto, true)]
    public async Task A_follow_survives_a_server_restart_on_the_same_port_and_delivers_everything_exactly_once(LiveMode live, bool json)
    {
        await using var store = new MemoryStreamStore();
        var server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = 0, Store = store });
        await server.StartAsync(Ct);
        var port = server.Port;
        // More refused connections than RetryPolicy.MaxAttempts: the read's own budget (unlimited) keeps it going.
        var failedWhileDown = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failures = 0;
        using var client = new DurableStreamClient(
            new HttpClient(new ObservingHandler(() =>
            {
                if (Interlocked.Increment(ref failures) >= 2 * ClientHarness.FastRetry.MaxAttempts)
                {
                    failedWhileDown.TrySetResult();
                }
            })) { Timeout = Timeout.InfiniteTimeSpan },
            new DurableStreamClientOptions { BaseUrl = server.StreamsUrl, Retry = ClientHarness.FastRetry },
            ownsHttpClient: true);
        var name = ClientHarness.NewName("restart");
        var contentType = json ? "application/json" : "text/plain";
        string[] parts = json ? ["[1]", "[2,3]", "[4]"] : ["before|", "while-down|", "after|"];
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = contentType, Body = Encoding.UTF8.GetBytes(parts[0]) }, Ct);

        var items = Channel.CreateUnbounded<string>();
        var reading = Task.Run(async () =>
        {
            await foreach (var chunk in client.ReadAsync(name, new ReadOptions { Live = live }, Ct))
            {
                foreach (var item in json ? DurableStreamClient.JsonMessages(chunk.Data).Select(m => m.GetRawText()) : chunk.Data.IsEmpty ? [] : [Encoding.UTF8.GetString(chunk.Data.Span)])
                {
                    await items.Writer.WriteAsync(item, Ct);
                }
            }
            items.Writer.Complete();
        }, Ct);
        var received = new List<string> { await items.Reader.ReadAsync(Ct) };

        try
        {
            await server.DisposeAsync();
            await Task.WhenAny(failedWhileDown.Task, reading).WaitAsync(Ct); // the follow has met refused connections
            Assert.False(reading.IsCompleted, $"The follow ended while the server was down: {reading.Exception?.InnerException?.Message}");
            await store.AppendAsync(name, new AppendRequest { ContentType = contentType, Body = Encoding.UTF8.GetBytes(parts[1]) }, Ct);
            server = new DurableStreamServer(new DurableStreamServerOptions { Host = "127.0.0.1", Port = port, Store = store });
            await server.StartAsync(Ct);
            Assert.Equal(port, server.Port);

            using var writer = new DurableStreamClient(new DurableStreamClientOptions { BaseUrl = server.StreamsUrl });
            await writer.AppendAsync(name, parts[2], contentType, new AppendOptions { Close = true }, Ct);
            await reading.WaitAsync(Ct);
            await foreach (var item in items.Reader.ReadAllAsync(Ct))
            {
                received.Add(item);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }

        if (json)
        {
            Assert.Equal(["1", "2", "3", "4"], received);
        }
        else
        {
            Assert.Equal(string.Concat(parts), string.Concat(received));
        }
    }

    [Theory]
    [InlineData(LiveMode.LongPoll)]
    [InlineData(LiveMode.Sse)]
    public async Task Bodies_that_break_mid_way_many_times_in_a_row_are_retried_and_nothing_is_repeated_or_lost(LiveMode live)
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json", Body = "[\"first\",\"second\"]"u8.ToArray() }, Ct);
        await harness.Client.CloseAsync(name, Ct);
        harness.Faults.BreakAfterBytes = 8;
        harness.Faults.Decide = (request, index) => request.Method == HttpMethod.Get && index < 6 ? Fault.BreakBody : Fault.None;

        var messages = await harness.Client.ReadJsonAsync(name, new ReadOptions { Live = live }, Ct).Select(m => m.GetString()).ToListAsync(Ct);

        Assert.Equal(["first", "second"], messages);
        Assert.Equal(7, harness.Faults.Count(HttpMethod.Get));
    }

    [Theory]
    [InlineData(LiveMode.LongPoll, "503", "seconds")]
    [InlineData(LiveMode.Sse, "429", "seconds")]
    [InlineData(LiveMode.LongPoll, "429", "date")]
    [InlineData(LiveMode.Sse, "503", "date")]
    public async Task Retry_After_on_503_and_429_is_honoured_beyond_MaxDelay(LiveMode live, string status, string form)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var retrying = Channel.CreateUnbounded<string>();
        await using var harness = await ClientHarness.StartAsync(
            configureClient: o => o with { TimeProvider = time, LoggerFactory = new CallbackLoggerFactory((id, text) => retrying.Writer.TryWrite(text)) },
            cancellationToken: Ct);
        var name = ClientHarness.NewName();
        await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "data"u8.ToArray() }, Ct);
        await harness.Client.CloseAsync(name, Ct);
        harness.Faults.RetryAfterSeconds = form == "seconds" ? "7" : time.GetUtcNow().AddSeconds(7).ToString("R");
        var fault = status == "503" ? Fault.ServiceUnavailable : Fault.TooManyRequests;
        // An HTTP date is absolute: only the first answer carries one that lies 7 s ahead.
        var faults = form == "seconds" ? 2 : 1;
        harness.Faults.Decide = (request, index) => request.Method == HttpMethod.Get && index < faults ? fault : Fault.None;

        var read = harness.Client.ReadAsync(name, new ReadOptions { Live = live }, Ct).ToListAsync(Ct).AsTask();
        for (var retry = 0; retry < faults; retry++)
        {
            Assert.StartsWith("Retrying in 7000 ms after attempt " + (retry + 1), await retrying.Reader.ReadAsync(Ct), StringComparison.Ordinal);
            await AdvanceUntilAsync(time, () => harness.Faults.Count(HttpMethod.Get) > retry + 1, TimeSpan.FromSeconds(7));
        }
        var chunks = await read.WaitAsync(Ct);

        Assert.Equal("data", DurableStreamClientTests.Text(chunks));
        Assert.Equal(faults + 1, harness.Faults.Count(HttpMethod.Get));
    }

    [Fact]
    public async Task A_follow_gives_up_after_MaxRetries_failures_in_a_row_with_the_offset_to_resume_from()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var name = ClientHarness.NewName();
        var tail = (await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "kept"u8.ToArray() }, Ct)).NextOffset;
        // The catch-up succeeds; then every request fails, but each success in between resets the count.
        harness.Faults.Decide = (request, index) => request.Method == HttpMethod.Get && index > 0 && index != 3 ? Fault.ServiceUnavailable : Fault.None;
        var chunks = new List<StreamChunk>();

        var error = await Assert.ThrowsAsync<DurableStreamException>(async () =>
        {
            await foreach (var chunk in harness.Client.ReadAsync(name, new ReadOptions { Live = LiveMode.LongPoll, MaxRetries = 3 }, Ct))
            {
                chunks.Add(chunk);
                if (chunks.Count == 1)
                {
                    await harness.Client.AppendAsync(name, "more", "text/plain", cancellationToken: Ct);
                }
            }
        });

        Assert.Equal("keptmore", DurableStreamClientTests.Text(chunks));
        Assert.Equal(DurableStreamErrorCode.Unavailable, error.ErrorCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, error.StatusCode);
        Assert.Equal(chunks[^1].NextOffset, error.ResumeOffset);
        Assert.NotEqual(tail, error.ResumeOffset);
        Assert.Equal(1 + 2 + 1 + 4, harness.Faults.Count(HttpMethod.Get)); // ok, 2 failures, ok, 1 + 3 retries
    }

    [Fact]
    public async Task A_follow_gives_up_once_RetryFor_passes_without_progress()
    {
        var time = new FakeTimeProvider();
        var retrying = Channel.CreateUnbounded<string>();
        await using var harness = await ClientHarness.StartAsync(
            configureClient: o => o with { TimeProvider = time, LoggerFactory = new CallbackLoggerFactory((id, text) => retrying.Writer.TryWrite(text)) },
            cancellationToken: Ct);
        var name = ClientHarness.NewName();
        var tail = (await harness.Client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct)).NextOffset;
        harness.Faults.Decide = (request, _) => request.Method == HttpMethod.Get ? Fault.ServiceUnavailable : Fault.None;
        harness.Faults.RetryAfterSeconds = "4";

        var read = harness.Client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse, RetryFor = TimeSpan.FromSeconds(10) }, Ct).ToListAsync(Ct).AsTask();
        Assert.StartsWith("Retrying in 4000 ms after attempt 1", await retrying.Reader.ReadAsync(Ct), StringComparison.Ordinal);
        await AdvanceUntilAsync(time, () => harness.Faults.Count(HttpMethod.Get) > 1, TimeSpan.FromSeconds(4));
        Assert.StartsWith("Retrying in 4000 ms after attempt 2", await retrying.Reader.ReadAsync(Ct), StringComparison.Ordinal);
        await AdvanceUntilAsync(time, () => harness.Faults.Count(HttpMethod.Get) > 2, TimeSpan.FromSeconds(4));
        // 8 s have passed: the last wait is cut to the 2 s left, and the attempt after it is the last.
        Assert.StartsWith("Retrying in 2000 ms after attempt 3", await retrying.Reader.ReadAsync(Ct), StringComparison.Ordinal);
        await AdvanceUntilAsync(time, () => read.IsCompleted, TimeSpan.FromSeconds(2));
        var error = await Assert.ThrowsAsync<DurableStreamException>(() => read);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, error.StatusCode);
        Assert.Equal("-1", error.ResumeOffset);
        Assert.Equal(4, harness.Faults.Count(HttpMethod.Get));
        _ = tail;
    }

    [Fact]
    public async Task A_404_ends_a_follow_at_once_with_the_resume_offset()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);

        var error = await Assert.ThrowsAsync<DurableStreamException>(() =>
            harness.Client.ReadAsync(ClientHarness.NewName(), new ReadOptions { Live = LiveMode.LongPoll, Offset = "now" }, Ct).ToListAsync(Ct).AsTask());

        Assert.Equal(DurableStreamErrorCode.NotFound, error.ErrorCode);
        Assert.Equal("now", error.ResumeOffset);
        Assert.Equal(1, harness.Faults.Count(HttpMethod.Get));
    }

    [Fact]
    public async Task An_SSE_reconnect_waits_the_servers_retry_interval()
    {
        var time = new FakeTimeProvider();
        var handler = new CannedSseHandler(
            "retry: 3000\n\nevent: data\ndata: a\n\nevent: control\ndata: {\"streamNextOffset\":\"1\"}\n\n",
            "event: data\ndata: b\n\nevent: control\ndata: {\"streamNextOffset\":\"2\",\"streamClosed\":true}\n\n");
        using var client = new DurableStreamClient(new HttpClient(handler), new DurableStreamClientOptions { BaseUrl = new Uri("http://127.0.0.1:9/"), TimeProvider = time });
        var enumerator = client.ReadAsync("s", new ReadOptions { Live = LiveMode.Sse }, Ct).GetAsyncEnumerator(Ct);
        try
        {
            Assert.True(await enumerator.MoveNextAsync());
            Assert.Equal("a", Encoding.UTF8.GetString(enumerator.Current.Data.Span));

            var next = enumerator.MoveNextAsync().AsTask();
            time.Advance(TimeSpan.FromMilliseconds(2999));
            Assert.Equal(1, handler.Requests);
            Assert.False(next.IsCompleted);
            await AdvanceUntilAsync(time, () => next.IsCompleted, TimeSpan.FromMilliseconds(1));

            Assert.True(await next);
            Assert.Equal("b", Encoding.UTF8.GetString(enumerator.Current.Data.Span));
            Assert.Equal(2, handler.Requests);
            Assert.Contains("offset=1", handler.LastUrl, StringComparison.Ordinal);
        }
        finally
        {
            await enumerator.DisposeAsync();
        }
    }

    [Fact]
    public async Task Invalid_retry_budgets_are_refused_naming_the_option()
    {
        using var client = new DurableStreamClient();

        var retries = Assert.Throws<ArgumentException>(() => client.ReadAsync("s", new ReadOptions { MaxRetries = -1 }, Ct));
        var retryFor = Assert.Throws<ArgumentException>(() => client.ReadAsync("s", new ReadOptions { RetryFor = TimeSpan.Zero }, Ct));
        var longPoll = Assert.Throws<ArgumentException>(() => new DurableStreamClient(new DurableStreamClientOptions { LongPollTimeout = TimeSpan.Zero }));

        Assert.Contains("MaxRetries", retries.Message, StringComparison.Ordinal);
        Assert.Contains("RetryFor", retryFor.Message, StringComparison.Ordinal);
        Assert.Contains("LongPollTimeout", longPoll.Message, StringComparison.Ordinal);
        await Task.CompletedTask;
    }

    /// <summary>
    /// Advances fake time in steps of <paramref name="step"/> until <paramref name="done"/>: a wait may be scheduled a
    /// moment after the log line that announces it, and a timer created after an advance would not see it.
    /// </summary>
    private static async Task AdvanceUntilAsync(FakeTimeProvider time, Func<bool> done, TimeSpan step)
    {
        var first = true;
        while (!done())
        {
            time.Advance(first ? step : TimeSpan.FromMilliseconds(1));
            first = false;
            await Task.Delay(1, Ct);
        }
    }

    /// <summary>Forwards requests and reports every one that fails without a response (a refused or broken connection).</summary>
    private sealed class ObservingHandler(Action onFailure) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            catch (HttpRequestException)
            {
                onFailure();
                throw;
            }
        }
    }

    /// <summary>Answers the n-th request with the n-th canned SSE body, which then ends.</summary>
    private sealed class CannedSseHandler(params string[] bodies) : HttpMessageHandler
    {
        private int _requests;

        public int Requests => Volatile.Read(ref _requests);

        public string LastUrl { get; private set; } = "";

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var index = Interlocked.Increment(ref _requests) - 1;
            LastUrl = request.RequestUri!.ToString();
            var content = new StringContent(bodies[index], Encoding.UTF8);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("text/event-stream");
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request });
        }
    }
}
