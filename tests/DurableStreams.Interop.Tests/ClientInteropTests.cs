using System.Text;
using DurableStreams.Client;
using Xunit;

namespace DurableStreams.Interop.Tests;

/// <summary>The client library against the Node reference server and ours: the same calls, the same results.</summary>
public sealed class ClientInteropTests(ReferenceServer reference, OurServer ours) : InteropTestBase(reference, ours)
{
    private const int Timeout = 60_000;

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task Sse_delivers_every_data_event_of_a_text_stream_in_order(string server)
    {
        using var client = Client(server);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain" }, Ct);
        foreach (var part in new[] { "x", "y", "z" })
        {
            await client.AppendAsync(name, part, "text/plain", cancellationToken: Ct);
        }

        var text = new StringBuilder();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await foreach (var chunk in client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse }, stop.Token))
        {
            text.Append(Encoding.UTF8.GetString(chunk.Data.Span));
            if (chunk.UpToDate)
            {
                break;
            }
        }

        Assert.Equal("xyz", text.ToString());
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task Sse_delivers_every_message_of_a_JSON_stream_and_ends_at_close(string server)
    {
        using var client = Client(server);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json" }, Ct);
        await client.AppendAsync(name, """{"n":1}""", "application/json", cancellationToken: Ct);
        await client.AppendAsync(name, """{"n":2,"s":"line\nbreak"}""", "application/json", cancellationToken: Ct);
        await client.AppendAsync(name, """[{"n":3},{"n":4}]""", "application/json", new AppendOptions { Close = true }, Ct);

        var messages = await client.ReadJsonAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);
        var chunks = await client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);

        Assert.Equal([1, 2, 3, 4], messages.Select(m => m.GetProperty("n").GetInt32()));
        Assert.Equal("line\nbreak", messages[1].GetProperty("s").GetString());
        Assert.True(chunks[^1].StreamClosed);
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task Sse_decodes_every_base64_data_event_of_a_binary_stream(string server)
    {
        using var client = Client(server);
        var name = NewName();
        byte[][] parts = [[0, 1, 2], [255], [10, 13, 0], [.. Enumerable.Range(0, 3000).Select(i => (byte)(i * 31))]];
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/octet-stream" }, Ct);
        foreach (var part in parts)
        {
            await client.AppendAsync(name, part, "application/octet-stream", cancellationToken: Ct);
        }
        await client.CloseAsync(name, Ct);

        var chunks = await client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);

        Assert.Equal(parts.SelectMany(p => p).ToArray(), chunks.SelectMany(c => c.Data.ToArray()).ToArray());
        Assert.True(chunks[^1].StreamClosed);
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task Catch_up_returns_every_append_and_stops_up_to_date(string server)
    {
        using var client = Client(server);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "a|"u8.ToArray() }, Ct);
        var middle = await client.AppendAsync(name, "b|", "text/plain", cancellationToken: Ct);
        await client.AppendAsync(name, "c|", "text/plain", cancellationToken: Ct);

        var all = await client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);
        var resumed = await client.ReadAsync(name, new ReadOptions { Offset = middle.NextOffset }, Ct).ToListAsync(Ct);
        var now = await client.ReadAsync(name, new ReadOptions { Offset = "now" }, Ct).ToListAsync(Ct);
        var metadata = await client.GetMetadataAsync(name, Ct);

        Assert.Equal("a|b|c|", Text(all));
        Assert.True(all[^1].UpToDate);
        Assert.False(all[^1].StreamClosed);
        Assert.Equal("c|", Text(resumed));
        Assert.Equal("", Text(now));
        Assert.Equal(metadata.NextOffset, all[^1].NextOffset);
        Assert.Equal(metadata.NextOffset, now[^1].NextOffset);
        Assert.StartsWith("text/plain", metadata.ContentType, StringComparison.Ordinal);
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task Long_poll_follows_a_live_append_and_ends_at_close(string server)
    {
        using var client = Client(server);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "old|"u8.ToArray() }, Ct);
        await using var chunks = client.ReadAsync(name, new ReadOptions { Live = LiveMode.LongPoll }, Ct).GetAsyncEnumerator(Ct);

        Assert.True(await chunks.MoveNextAsync());
        var old = chunks.Current;
        var moving = chunks.MoveNextAsync().AsTask();
        await client.AppendAsync(name, "new|", "text/plain", new AppendOptions { Close = true }, Ct);
        var text = new StringBuilder();
        var closed = false;
        while (await moving)
        {
            text.Append(Encoding.UTF8.GetString(chunks.Current.Data.Span));
            closed = chunks.Current.StreamClosed;
            moving = chunks.MoveNextAsync().AsTask();
        }

        Assert.Equal("old|", Encoding.UTF8.GetString(old.Data.Span));
        Assert.Equal("new|", text.ToString());
        Assert.True(closed);
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task Long_poll_from_now_waits_past_a_server_timeout_for_new_data(string server)
    {
        // The second long-poll request is sent only after the reader saw a server's long-poll time out (the reference's
        // is 2 s, ours 30 s, so only the reference's is waited for): the reader yields an empty up-to-date chunk with the
        // offset the server resolved "now" to, then asks again instead of stopping.
        var secondPoll = new RequestSignal(r => r.RequestUri!.Query.Contains("live=long-poll", StringComparison.Ordinal), 2);
        using var client = Client(server, secondPoll);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "before|"u8.ToArray() }, Ct);
        await using var chunks = client.ReadAsync(name, new ReadOptions { Offset = "now", Live = LiveMode.LongPoll }, Ct).GetAsyncEnumerator(Ct);

        var moving = chunks.MoveNextAsync().AsTask();
        if (server == "reference")
        {
            Assert.True(await moving);
            Assert.True(chunks.Current.Data.IsEmpty);
            Assert.True(chunks.Current.UpToDate);
            Assert.NotEqual("now", chunks.Current.NextOffset);
            moving = chunks.MoveNextAsync().AsTask();
            await secondPoll.Reached.Task.WaitAsync(Ct);
            Assert.False(moving.IsCompleted);
        }
        else
        {
            // "now" resolves when the long-poll arrives: append only once the server waits, or the append could land
            // first and the poll (rightly) wait past it for data that never comes.
            await Ours.Store.WaitStartedAsync(name, Ct);
        }
        await client.AppendAsync(name, "after|", "text/plain", cancellationToken: Ct);

        Assert.True(await moving);
        var text = Encoding.UTF8.GetString(chunks.Current.Data.Span);
        while (text.Length == 0 && await chunks.MoveNextAsync())
        {
            text = Encoding.UTF8.GetString(chunks.Current.Data.Span); // a server may first report the resolved tail
        }
        Assert.Equal("after|", text);
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task Idempotent_producer_appends_every_message_once_and_a_replay_appends_nothing(string server)
    {
        using var client = Client(server);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "application/json" }, Ct);
        await using (var producer = client.CreateProducer(name, "writer-1", epoch: 0, contentType: "application/json"))
        {
            for (var i = 0; i < 200; i++)
            {
                await producer.AppendAsync(Encoding.UTF8.GetBytes($$"""{"i":{{i}}}"""), Ct);
            }
        }
        await using (var replay = client.CreateProducer(name, "writer-1", epoch: 0, contentType: "application/json", autoClaim: false))
        {
            await replay.AppendAsync("""{"i":0}"""u8.ToArray(), Ct); // seq 0 of epoch 0 again: a duplicate
        }

        var messages = await client.ReadJsonAsync(name, cancellationToken: Ct).ToListAsync(Ct);

        Assert.Equal(Enumerable.Range(0, 200), messages.Select(m => m.GetProperty("i").GetInt32()));
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Servers))]
    public async Task A_closed_stream_ends_every_read_mode_and_refuses_appends(string server)
    {
        using var client = Client(server);
        var name = NewName();
        await client.CreateAsync(name, new CreateStreamOptions { ContentType = "text/plain", Body = "all|"u8.ToArray() }, Ct);
        await client.AppendAsync(name, "there is|", "text/plain", cancellationToken: Ct);
        var closing = await client.CloseAsync(name, Ct);

        var catchUp = await client.ReadAsync(name, cancellationToken: Ct).ToListAsync(Ct);
        var longPoll = await client.ReadAsync(name, new ReadOptions { Live = LiveMode.LongPoll }, Ct).ToListAsync(Ct);
        var sse = await client.ReadAsync(name, new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);
        var atTail = await client.ReadAsync(name, new ReadOptions { Offset = closing.NextOffset, Live = LiveMode.Sse }, Ct).ToListAsync(Ct);
        var metadata = await client.GetMetadataAsync(name, Ct);
        var append = await Assert.ThrowsAsync<DurableStreamException>(() => client.AppendAsync(name, "more", "text/plain", cancellationToken: Ct));

        Assert.True(closing.Closed);
        Assert.All(new[] { catchUp, longPoll, sse }, chunks =>
        {
            Assert.Equal("all|there is|", Text(chunks));
            Assert.True(chunks[^1].StreamClosed);
        });
        var last = Assert.Single(atTail);
        Assert.True(last.StreamClosed);
        Assert.True(last.Data.IsEmpty);
        Assert.True(metadata.Closed);
        Assert.Equal(DurableStreamErrorCode.StreamClosed, append.ErrorCode);
    }

    private static string Text(IEnumerable<StreamChunk> chunks) =>
        Encoding.UTF8.GetString(chunks.SelectMany(c => c.Data.ToArray()).ToArray());
}
