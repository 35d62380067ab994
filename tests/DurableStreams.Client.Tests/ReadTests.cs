using System.Text;
using System.Text.Json;
using DurableStreams.Client.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Client.Tests;

/// <summary>Catch-up paging, long-poll and SSE following, EOF, resume and JSON decoding over real Kestrel.</summary>
public sealed class ReadTests
{
    private const int Timeout = 20_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact(Timeout = Timeout)]
    public async Task Catch_up_pages_through_small_chunks_until_UpToDate_and_stops()
    {
        await using var harness = await ClientHarness.StartAsync(o => o.MaxReadChunkBytes = 4, cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "abcdefghij"u8.ToArray() }, Ct);

        var chunks = await client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal(["abcd", "efgh", "ij"], chunks.Select(c => Encoding.UTF8.GetString(c.Data.Span)));
        Assert.Equal([false, false, true], chunks.Select(c => c.UpToDate));
        Assert.All(chunks, c => Assert.False(c.StreamClosed));
        Assert.Equal("0000000000000000_0000000000000010", chunks[^1].NextOffset);
        Assert.Equal(3, harness.Faults.Count(HttpMethod.Get));
    }

    [Fact(Timeout = Timeout)]
    public async Task Reading_resumes_from_a_returned_offset_and_now_yields_only_the_tail()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        var middle = await client.AppendAsync(name, "first|", "text/plain", cancellationToken: Ct);
        await client.AppendAsync(name, "second", "text/plain", cancellationToken: Ct);

        var resumed = await client.ReadAsync(name, new ReadOptions { Offset = middle.NextOffset }, Ct).ToListAsync(Ct);
        var now = await client.ReadAsync(name, new ReadOptions { Offset = "now" }, Ct).ToListAsync(Ct);

        Assert.Equal("second", DurableStreamClientTests.Text(resumed));
        var tail = Assert.Single(now);
        Assert.True(tail.Data.IsEmpty);
        Assert.True(tail.UpToDate);
        Assert.Equal("0000000000000000_0000000000000012", tail.NextOffset);
    }

    [Fact(Timeout = Timeout)]
    public async Task Catch_up_of_a_closed_stream_ends_with_StreamClosed()
    {
        await using var harness = await ClientHarness.StartAsync(o => o.MaxReadChunkBytes = 3, cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "hello"u8.ToArray() }, Ct);
        await client.CloseAsync(name, Ct);

        var chunks = await client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal("hello", DurableStreamClientTests.Text(chunks));
        Assert.True(chunks[^1].StreamClosed);
        Assert.All(chunks[..^1], c => Assert.False(c.StreamClosed));
    }

    [Fact(Timeout = Timeout)]
    public async Task Long_poll_receives_a_live_append_echoes_the_cursor_and_ends_at_EOF()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "old"u8.ToArray() }, Ct);
        await using var chunks = client.ReadAsync(name, new ReadOptions { Live = LiveMode.LongPoll }, Ct).GetAsyncEnumerator(Ct);

        Assert.True(await chunks.MoveNextAsync());
        var old = chunks.Current;
        var moving = chunks.MoveNextAsync().AsTask();
        await harness.Store.WaitStartedAsync(name, Ct);
        await client.AppendAsync(name, "new", "text/plain", cancellationToken: Ct);
        Assert.True(await moving);
        var live = chunks.Current;
        moving = chunks.MoveNextAsync().AsTask();
        await harness.Store.WaitStartedAsync(name, Ct);
        await client.CloseAsync(name, Ct);
        Assert.True(await moving);
        var eof = chunks.Current;

        Assert.Equal("old", Encoding.UTF8.GetString(old.Data.Span));
        Assert.Equal("new", Encoding.UTF8.GetString(live.Data.Span));
        Assert.True(live.UpToDate);
        Assert.NotNull(live.Cursor);
        Assert.True(eof.StreamClosed);
        Assert.True(eof.Data.IsEmpty);
        Assert.False(await chunks.MoveNextAsync());
        var polls = harness.Faults.Requests.Where(r => r.Method == HttpMethod.Get).Select(r => r.Uri.Query).ToList();
        Assert.All(polls, q => Assert.Contains("live=long-poll", q, StringComparison.Ordinal));
        Assert.DoesNotContain("cursor=", polls[0], StringComparison.Ordinal);
        Assert.Contains("cursor=" + live.Cursor, polls[^1], StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task Sse_decodes_base64_binary_data_including_live_appends_and_ends_at_EOF()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        var first = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray();
        var second = new byte[] { 0, (byte)'\n', (byte)'\r', 255, 10, 13 };
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/octet-stream", Body = first }, Ct);
        await using var chunks = client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).GetAsyncEnumerator(Ct);

        Assert.True(await chunks.MoveNextAsync());
        var caughtUp = chunks.Current;
        var moving = chunks.MoveNextAsync().AsTask();
        await harness.Store.WaitStartedAsync(name, Ct);
        await client.AppendAsync(name, second, "application/octet-stream", new AppendOptions { Close = true }, Ct);
        Assert.True(await moving);
        var last = chunks.Current;

        Assert.Equal(first, caughtUp.Data.ToArray());
        Assert.True(caughtUp.UpToDate);
        Assert.NotNull(caughtUp.Cursor);
        Assert.Equal(second, last.Data.ToArray());
        Assert.True(last.StreamClosed);
        Assert.False(await chunks.MoveNextAsync());
        Assert.Single(harness.Faults.Requests, r => r.Method == HttpMethod.Get);
    }

    [Fact(Timeout = Timeout)]
    public async Task Sse_on_a_JSON_stream_yields_array_text_and_ReadJsonAsync_yields_messages()
    {
        await using var harness = await ClientHarness.StartAsync(cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json", Body = """[{"n":1},{"n":2}]"""u8.ToArray() }, Ct);
        await client.AppendAsync(name, """{"n":3,"s":"line\nbreak"}""", "application/json", new AppendOptions { Close = true }, Ct);

        var raw = await client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);
        var messages = await client.ReadJsonAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);
        var typed = await client.ReadJsonAsync<Message>(name, jsonOptions: new JsonSerializerOptions(JsonSerializerDefaults.Web), cancellationToken: Ct).ToListAsync(Ct);

        Assert.StartsWith("[", Encoding.UTF8.GetString(raw[0].Data.Span), StringComparison.Ordinal);
        Assert.True(raw[^1].StreamClosed);
        Assert.Equal([1, 2, 3], messages.Select(m => m.GetProperty("n").GetInt32()));
        Assert.Equal([1, 2, 3], typed.Select(m => m!.N));
        Assert.Equal("line\nbreak", typed[2]!.S);
    }

    [Fact(Timeout = Timeout)]
    public async Task Sse_reconnects_from_the_last_offset_after_the_server_ends_the_response()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var harness = await ClientHarness.StartAsync(o => o.SseReconnectInterval = TimeSpan.FromSeconds(60), time, cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "before"u8.ToArray() }, Ct);
        await using var chunks = client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).GetAsyncEnumerator(Ct);

        Assert.True(await chunks.MoveNextAsync());
        var before = chunks.Current;
        var moving = chunks.MoveNextAsync().AsTask();
        await harness.Store.WaitStartedAsync(name, Ct);
        time.Advance(TimeSpan.FromSeconds(61)); // the server ends the SSE response (CDN collapsing window)
        await harness.Store.WaitStartedAsync(name, Ct); // ...and the client is back, parked on a new connection
        await client.AppendAsync(name, "after", "text/plain", cancellationToken: Ct);
        var reconnectedAt = await moving ? chunks.Current : null;
        while (reconnectedAt is { Data.IsEmpty: true } && await chunks.MoveNextAsync())
        {
            reconnectedAt = chunks.Current; // the reconnect's own up-to-date control event carries no data
        }

        Assert.Equal("before", Encoding.UTF8.GetString(before.Data.Span));
        Assert.NotNull(reconnectedAt);
        Assert.Equal("after", Encoding.UTF8.GetString(reconnectedAt.Data.Span));
        var gets = harness.Faults.Requests.Where(r => r.Method == HttpMethod.Get).ToList();
        Assert.Equal(2, gets.Count);
        Assert.Contains("offset=-1", gets[0].Uri.Query, StringComparison.Ordinal);
        Assert.Contains("offset=" + before.NextOffset, gets[1].Uri.Query, StringComparison.Ordinal);
        Assert.Contains("cursor=" + before.Cursor, gets[1].Uri.Query, StringComparison.Ordinal);
    }

    [Fact(Timeout = Timeout)]
    public async Task Catch_up_JSON_reads_split_into_messages()
    {
        await using var harness = await ClientHarness.StartAsync(o => o.MaxReadChunkBytes = 8, cancellationToken: Ct);
        var client = harness.Client;
        var name = ClientHarness.NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json" }, Ct);
        await client.AppendAsync(name, """[1,"two",{"three":3},[4]]""", "application/json", cancellationToken: Ct);

        var messages = await client.ReadJsonAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal(["1", "\"two\"", """{"three":3}""", "[4]"], messages.Select(m => m.GetRawText()));
    }

    private sealed record Message(int N, string? S);
}
