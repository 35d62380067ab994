using System.Net;
using System.Text;
using DurableStreams.Client.Internal;
using Xunit;

namespace DurableStreams.Client.Tests;

public sealed class SseEventReaderTests
{
    private const string Control = "event: control\ndata: {\"streamNextOffset\":\"7\",\"streamCursor\":\"c1\",\"upToDate\":true}\n\n";
    private const string ClosedControl = "event: control\ndata: {\"streamNextOffset\":\"9\",\"streamClosed\":true}\n\n";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Events_join_data_lines_strip_one_space_skip_comments_and_accept_any_line_ending()
    {
        const string body = ": comment\r\nevent: data\r\ndata:  two spaces\rdata:b\n\nevent: control\ndata: {\"x\":1}\n\nevent: data\ndata: unfinished";
        using var reader = new SseEventReader(new MemoryStream(Encoding.UTF8.GetBytes(body)));

        var first = await reader.ReadAsync(Ct);
        var second = await reader.ReadAsync(Ct);
        var end = await reader.ReadAsync(Ct);

        Assert.Equal(new SseEvent("data", " two spaces\nb"), first);
        Assert.Equal(new SseEvent("control", "{\"x\":1}"), second);
        Assert.Null(end);
    }

    [Fact]
    public async Task Several_data_events_before_one_control_event_are_each_read_in_order()
    {
        const string body = "event: data\ndata: x\n\nevent: data\ndata: y\n\nevent: data\ndata: z\n\n" + Control;
        using var reader = new SseEventReader(new MemoryStream(Encoding.UTF8.GetBytes(body)));

        var events = new List<SseEvent>();
        while (await reader.ReadAsync(Ct) is { } next)
        {
            events.Add(next);
        }

        Assert.Equal(["data:x", "data:y", "data:z", "control"], events.Select(e => e.Type == "data" ? $"data:{e.Data}" : e.Type));
    }

    [Fact]
    public async Task Client_delivers_every_text_data_event_before_a_control_event_in_order()
    {
        using var client = StubClient("text/plain", null, "event: data\ndata: x\n\nevent: data\ndata: y\n\nevent: data\ndata: z\n\n" + Control + "event: data\ndata: 1\n\nevent: data\ndata: 2\n\n" + ClosedControl);

        var chunks = await client.ReadAsync("s", new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);

        Assert.Equal(["xyz", "12"], chunks.Select(c => Encoding.UTF8.GetString(c.Data.Span)));
        Assert.Equal(["7", "9"], chunks.Select(c => c.NextOffset));
        Assert.True(chunks[0].UpToDate);
        Assert.True(chunks[1].StreamClosed);
    }

    [Fact]
    public async Task Client_joins_JSON_data_events_into_one_array_of_all_their_messages()
    {
        const string body = "event: data\ndata: [{\"n\":1}]\n\nevent: data\ndata: [\ndata: {\"n\":2},\ndata: {\"n\":3}\ndata: ]\n\nevent: data\ndata: []\n\nevent: data\ndata: [\"four\"]\n\n" + ClosedControl;
        using var client = StubClient("application/json", null, body);

        var chunks = await client.ReadAsync("s", new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);
        var messages = await client.ReadJsonAsync("s", new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);

        var chunk = Assert.Single(chunks);
        Assert.Equal("[{\"n\":1},{\"n\":2},\n{\"n\":3},\"four\"]", Encoding.UTF8.GetString(chunk.Data.Span));
        Assert.Equal(["{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "\"four\""], messages.Select(m => m.GetRawText()));
    }

    [Fact]
    public async Task Client_decodes_each_base64_data_event_and_concatenates_the_bytes()
    {
        // "AQID" = 01 02 03; "BA==" = 04 (padded on its own); "BQ\nYH" = 05 06 07 split over two data lines; "" = no bytes.
        const string body = "event: data\ndata: AQID\n\nevent: data\ndata: BA==\n\nevent: data\ndata: BQ\ndata: YH\n\nevent: data\ndata:\n\n" + ClosedControl;
        using var client = StubClient("application/octet-stream", "base64", body);

        var chunks = await client.ReadAsync("s", new ReadOptions { Live = LiveMode.Sse }, Ct).ToListAsync(Ct);

        var chunk = Assert.Single(chunks);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7 }, chunk.Data.ToArray());
    }

    /// <summary>A client whose every GET answers <paramref name="sseBody"/> and every HEAD the stream's content type.</summary>
    private static DurableStreamClient StubClient(string contentType, string? sseEncoding, string sseBody) =>
        new(new HttpClient(new StubHandler(contentType, sseEncoding, sseBody)), new DurableStreamClientOptions { BaseUrl = new Uri("http://127.0.0.1:9/") }, ownsHttpClient: true);

    private sealed class StubHandler(string contentType, string? sseEncoding, string sseBody) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request };
            if (request.Method == HttpMethod.Head)
            {
                response.Content = new ByteArrayContent([]);
                response.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
                response.Headers.TryAddWithoutValidation("Stream-Next-Offset", "9");
                return Task.FromResult(response);
            }
            response.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(sseBody));
            response.Content.Headers.TryAddWithoutValidation("Content-Type", "text/event-stream");
            if (sseEncoding is not null)
            {
                response.Headers.TryAddWithoutValidation("Stream-SSE-Data-Encoding", sseEncoding);
            }
            return Task.FromResult(response);
        }
    }
}
