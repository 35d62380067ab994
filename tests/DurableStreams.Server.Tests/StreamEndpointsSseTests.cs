using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using DurableStreams.Core;
using DurableStreams.Core.Memory;
using DurableStreams.Protocol;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>SSE over real Kestrel, read incrementally event by event, with the reconnect interval on a fake clock.</summary>
public sealed class StreamEndpointsSseTests
{
    private const int Timeout = 20_000;
    private static readonly TimeSpan ReconnectInterval = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory(Timeout = Timeout)]
    [InlineData("application/octet-stream", true)]
    [InlineData("application/x-custom", true)]
    [InlineData("text/plain", false)]
    [InlineData("text/csv; charset=utf-8", false)]
    [InlineData("application/json", false)]
    public async Task The_response_is_an_uncached_event_stream_without_Content_Length_base64_only_for_binary(string contentType, bool base64)
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, contentType, null, Ct);

        using var response = await OpenAsync(server, name, "-1");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("no-cache", Http.Header(response, "Cache-Control"));
        Assert.Null(response.Content.Headers.ContentLength);
        Assert.Equal(base64 ? "base64" : null, Http.Header(response, "Stream-SSE-Data-Encoding"));
        Http.SecurityHeaders(response);
    }

    [Fact(Timeout = Timeout)]
    public async Task Catch_up_then_live_appends_then_close_arrive_as_data_and_control_pairs_and_the_response_ends()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "hello", Ct);
        using var response = await OpenAsync(server, name, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var catchUp = await sse.ExpectAsync("data", Ct);
        var caughtUp = await sse.ExpectAsync("control", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        await server.AppendAsync(name, "text/plain", " world", Ct);
        var live = await sse.ExpectAsync("data", Ct);
        var afterLive = await sse.ExpectAsync("control", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        await server.CloseAsync(name, Ct);
        var closed = await sse.ExpectAsync("control", Ct);
        var end = await sse.ReadEventAsync(Ct);

        Assert.Equal("hello", catchUp.Data);
        Assert.Equal(Http.Offset(5), caughtUp.Field("streamNextOffset"));
        Assert.True(caughtUp.Flag("upToDate"));
        Assert.Matches("^[0-9]+$", caughtUp.Field("streamCursor"));
        Assert.False(caughtUp.Flag("streamClosed"));
        Assert.Equal(" world", live.Data);
        Assert.Equal(Http.Offset(11), afterLive.Field("streamNextOffset"));
        Assert.True(afterLive.Flag("upToDate"));
        Assert.NotNull(afterLive.Field("streamCursor"));
        Assert.Equal(Http.Offset(11), closed.Field("streamNextOffset"));
        Assert.True(closed.Flag("streamClosed"));
        Assert.Null(closed.Field("streamCursor"));
        Assert.Null(end);
    }

    [Fact(Timeout = Timeout)]
    public async Task Binary_data_arrives_base64_encoded_and_decodes_to_the_appended_bytes()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        var bytes = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray();
        using (var create = await server.SendAsync(HttpMethod.Put, name, ServerHarness.Body("application/octet-stream", bytes), Ct))
        {
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }
        using var response = await OpenAsync(server, name, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var data = await sse.ExpectAsync("data", Ct);

        var text = data.Data.Replace("\n", "", StringComparison.Ordinal);
        Assert.Equal(0, text.Length % 4);
        Assert.Equal(bytes, Convert.FromBase64String(text));
    }

    [Fact(Timeout = Timeout)]
    public async Task Text_with_line_breaks_round_trips_through_data_lines()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "line one\n line two\n\nevent: forged\n", Ct);
        using var response = await OpenAsync(server, name, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var data = await sse.ExpectAsync("data", Ct);
        var control = await sse.ExpectAsync("control", Ct);

        Assert.Equal("line one\n line two\n\nevent: forged\n", data.Data);
        Assert.True(control.Flag("upToDate"));
    }

    [Fact(Timeout = Timeout)]
    public async Task JSON_data_events_carry_a_JSON_array_of_the_messages()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "application/json", "[{\"a\":1},{\"b\":[2]}]", Ct);
        using var response = await OpenAsync(server, name, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var data = await sse.ExpectAsync("data", Ct);

        using var document = JsonDocument.Parse(data.Data);
        Assert.Equal(["{\"a\":1}", "{\"b\":[2]}"], document.RootElement.EnumerateArray().Select(e => e.GetRawText()));
    }

    [Fact(Timeout = Timeout)]
    public async Task The_response_ends_after_the_reconnect_interval_on_the_server_clock()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct);
        using var response = await OpenAsync(server, name, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));
        await sse.ExpectAsync("data", Ct);
        await sse.ExpectAsync("control", Ct);

        await server.Store.WaitStartedAsync(name, Ct);
        server.FakeTime.Advance(ReconnectInterval);

        Assert.Null(await sse.ReadEventAsync(Ct));
    }

    [Fact(Timeout = Timeout)]
    public async Task The_reconnect_interval_counts_from_the_start_of_the_response_not_from_the_last_event()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct);
        using var response = await OpenAsync(server, name, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));
        await sse.ExpectAsync("data", Ct);
        await sse.ExpectAsync("control", Ct);
        await server.Store.WaitStartedAsync(name, Ct);

        server.FakeTime.Advance(ReconnectInterval / 2);
        await server.AppendAsync(name, "text/plain", "d", Ct);
        Assert.Equal("d", (await sse.ExpectAsync("data", Ct)).Data);
        await sse.ExpectAsync("control", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        server.FakeTime.Advance(ReconnectInterval / 2);

        Assert.Null(await sse.ReadEventAsync(Ct));
    }

    [Fact(Timeout = Timeout)]
    public async Task At_offset_now_the_first_event_is_a_single_up_to_date_control_without_data()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "history", Ct);
        using var response = await OpenAsync(server, name, "now");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var first = await sse.ExpectAsync("control", Ct);
        await server.Store.WaitStartedAsync(name, Ct);
        await server.CloseAsync(name, Ct);
        var second = await sse.ExpectAsync("control", Ct);

        Assert.Equal(Http.Offset(7), first.Field("streamNextOffset"));
        Assert.True(first.Flag("upToDate"));
        Assert.NotNull(first.Field("streamCursor"));
        Assert.True(second.Flag("streamClosed"));
        Assert.Null(await sse.ReadEventAsync(Ct));
    }

    [Fact(Timeout = Timeout)]
    public async Task On_a_closed_stream_at_its_tail_a_closed_control_is_sent_and_the_response_ends()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "text/plain", "abc", Ct, ("Stream-Closed", "true"));
        using var response = await OpenAsync(server, name, Http.Offset(3));
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var control = await sse.ExpectAsync("control", Ct);

        Assert.True(control.Flag("streamClosed"));
        Assert.True(control.Flag("upToDate"));
        Assert.Equal(Http.Offset(3), control.Field("streamNextOffset"));
        Assert.Null(await sse.ReadEventAsync(Ct));
        Assert.Equal(0, server.Store.UnobservedWaits(name));
    }

    [Fact(Timeout = Timeout)]
    public async Task A_fork_streams_its_inherited_data_then_its_own_and_never_later_source_data()
    {
        await using var server = await StartAsync();
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await server.CreateAsync(source, "text/plain", "inherited|dropped", Ct);
        await server.CreateAsync(fork, "text/plain", "", Ct,
            ("Stream-Forked-From", server.Server.StreamsUrl.AbsolutePath + source), ("Stream-Fork-Offset", Http.Offset(0)), ("Stream-Fork-Sub-Offset", "10"));
        await server.AppendAsync(fork, "text/plain", "own", Ct);
        using var response = await OpenAsync(server, fork, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var received = new StringBuilder();
        SseEvent control;
        do
        {
            var next = await sse.ReadEventAsync(Ct) ?? throw new Xunit.Sdk.XunitException("The SSE response ended early.");
            if (next.Type == "data")
            {
                received.Append(next.Data);
                continue;
            }
            control = next;
            if (control.Flag("upToDate"))
            {
                break;
            }
        }
        while (true);
        await server.Store.WaitStartedAsync(fork, Ct);
        await server.AppendAsync(source, "text/plain", "source-later", Ct);
        await server.AppendAsync(fork, "text/plain", "+live", Ct);
        var live = await sse.ExpectAsync("data", Ct);

        Assert.Equal("inherited|own", received.ToString());
        Assert.Equal(Http.Offset(13), control.Field("streamNextOffset"));
        Assert.Equal("+live", live.Data);
    }

    [Fact(Timeout = Timeout)]
    public async Task Several_SSE_readers_woken_by_one_append_each_get_the_event_once()
    {
        await using var server = await StartAsync();
        var name = ServerHarness.NewName();
        await server.CreateAsync(name, "application/json", null, Ct);
        var readers = new List<(HttpResponseMessage Response, SseReader Reader)>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var response = await OpenAsync(server, name, "-1");
                var reader = new SseReader(await response.Content.ReadAsStreamAsync(Ct));
                readers.Add((response, reader));
                Assert.True((await reader.ExpectAsync("control", Ct)).Flag("upToDate"));
                await server.Store.WaitStartedAsync(name, Ct);
            }

            await server.AppendAsync(name, "application/json", "[{\"k\":\"v\"},{\"k\":\"w\"}]", Ct);

            foreach (var (_, reader) in readers)
            {
                using var document = JsonDocument.Parse((await reader.ExpectAsync("data", Ct)).Data);
                Assert.Equal(["{\"k\":\"v\"}", "{\"k\":\"w\"}"], document.RootElement.EnumerateArray().Select(e => e.GetRawText()));
                Assert.Equal(Http.Offset(20), (await reader.ExpectAsync("control", Ct)).Field("streamNextOffset"));
            }
        }
        finally
        {
            foreach (var (response, reader) in readers)
            {
                reader.Dispose();
                response.Dispose();
            }
        }
    }

    [Theory(Timeout = Timeout)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task With_a_chunk_cap_catch_up_arrives_in_capped_data_events_and_only_the_last_control_is_up_to_date_or_closed(bool closed)
    {
        await using var server = await ServerHarness.StartWithFakeClockAsync(o => o.MaxReadChunkBytes = 10, Ct);
        var name = ServerHarness.NewName();
        (string, string)[] headers = closed ? [("Stream-Closed", "true")] : [];
        await server.CreateAsync(name, "text/plain", "0123456789abcdefghijKLMNO", Ct, headers);
        using var response = await OpenAsync(server, name, "-1");
        using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

        var data = new List<string>();
        var controls = new List<SseEvent>();
        for (var i = 0; i < 3; i++)
        {
            data.Add((await sse.ExpectAsync("data", Ct)).Data);
            controls.Add(await sse.ExpectAsync("control", Ct));
        }

        Assert.Equal(["0123456789", "abcdefghij", "KLMNO"], data);
        Assert.Equal([Http.Offset(10), Http.Offset(20), Http.Offset(25)], controls.Select(c => c.Field("streamNextOffset")));
        Assert.Equal([false, false, true], controls.Select(c => c.Flag("upToDate")));
        Assert.Equal([false, false, closed], controls.Select(c => c.Flag("streamClosed")));
        Assert.All(controls.Take(2), c => Assert.NotNull(c.Field("streamCursor")));
        if (closed)
        {
            Assert.Null(await sse.ReadEventAsync(Ct));
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_missing_stream_answers_404_instead_of_an_event_stream()
    {
        await using var server = await StartAsync();

        using var response = await OpenAsync(server, ServerHarness.NewName("missing"), "-1");

        await Http.ErrorAsync(response, HttpStatusCode.NotFound);
    }

    [Fact(Timeout = Timeout)]
    public async Task An_idle_reader_gives_its_last_read_back_to_the_store_before_it_waits()
    {
        // A store may lend pooled buffers with a read (the file store does); a reader idle for the reconnect interval
        // must not keep them, nor the read, while it waits.
        var tracking = new ReleaseTrackingStore(new MemoryStreamStore());
        await using (tracking)
        {
            await using var host = await InProcessServer.StartAsync(store: tracking, cancellationToken: Ct);
            using var client = new HttpClient { BaseAddress = host.StreamsUrl, Timeout = ServerHarness.RequestTimeout };
            var name = ServerHarness.NewName();
            using (var created = await client.PutAsync(name, ServerHarness.Body("text/plain", "hello"), Ct))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }
            using var request = ServerHarness.Request(HttpMethod.Get, $"{name}?offset=-1&live=sse");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
            using var sse = new SseReader(await response.Content.ReadAsStreamAsync(Ct));

            Assert.Equal("hello", (await sse.ExpectAsync("data", Ct)).Data);
            await sse.ExpectAsync("control", Ct);
            Assert.Equal(0, await tracking.OpenReadsAtWaitAsync(Ct));

            // Still live: the next append arrives, read afresh from the position the reader kept.
            using (var appended = await client.PostAsync(name, ServerHarness.Body("text/plain", " world"), Ct))
            {
                Assert.True(appended.IsSuccessStatusCode);
            }
            Assert.Equal(" world", (await sse.ExpectAsync("data", Ct)).Data);
            Assert.Equal(Http.Offset(11), (await sse.ExpectAsync("control", Ct)).Field("streamNextOffset"));
            Assert.Equal(0, await tracking.OpenReadsAtWaitAsync(Ct));
        }
    }

    /// <summary>
    /// Counts the reads the server has not given back (disposed) and reports that count whenever a live wait starts
    /// (private: it is no wrapper the tests share).
    /// </summary>
    private sealed class ReleaseTrackingStore(IStreamStore inner) : ForwardingStore(inner)
    {
        private readonly Channel<int> _atWait = Channel.CreateUnbounded<int>();
        private int _open;

        public async Task<int> OpenReadsAtWaitAsync(CancellationToken cancellationToken) => await _atWait.Reader.ReadAsync(cancellationToken);

        public override async ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
        {
            var read = await Inner.ReadAsync(name, request, cancellationToken);
            Interlocked.Increment(ref _open);
            return new ReadResult
            {
                Status = read.Status,
                Info = read.Info,
                Start = read.Start,
                Next = read.Next,
                UpToDate = read.UpToDate,
                Closed = read.Closed,
                Chunks = read.Chunks,
                Length = read.Length,
                Release = () =>
                {
                    Interlocked.Decrement(ref _open);
                    read.Dispose();
                },
            };
        }

        public override ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default)
        {
            _atWait.Writer.TryWrite(Volatile.Read(ref _open));
            return base.WaitAsync(name, offset, timeout, cancellationToken);
        }
    }

    private static Task<ServerHarness> StartAsync() =>
        ServerHarness.StartWithFakeClockAsync(o => o.SseReconnectInterval = ReconnectInterval, Ct);

    private static async Task<HttpResponseMessage> OpenAsync(ServerHarness server, string name, string offset)
    {
        using var request = ServerHarness.Request(HttpMethod.Get, $"{name}?offset={offset}&live=sse");
        return await server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
    }
}
