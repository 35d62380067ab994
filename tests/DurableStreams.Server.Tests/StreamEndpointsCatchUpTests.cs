using System.Net;
using System.Text.Json;
using DurableStreams.Server.Tests.Infrastructure;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>A server that serves at most 10 bytes of stream data per catch-up response.</summary>
public sealed class SmallReadChunkFixture : ServerFixture
{
    public const int ChunkBytes = 10;

    protected override void Configure(DurableStreamServerOptions options) => options.MaxReadChunkBytes = ChunkBytes;
}

/// <summary>Catch-up reads split by MaxReadChunkBytes: up-to-date and closed only where the tail is reached.</summary>
public sealed class StreamEndpointsCatchUpTests(SmallReadChunkFixture fixture) : IClassFixture<SmallReadChunkFixture>
{
    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_25_byte_stream_reads_in_three_responses_and_only_the_last_is_up_to_date()
    {
        var name = ServerHarness.NewName();
        const string data = "0123456789abcdefghijKLMNO";
        await _server.CreateAsync(name, "application/octet-stream", data, Ct);

        var pages = await ReadPagesAsync(name);

        Assert.Equal(["0123456789", "abcdefghij", "KLMNO"], pages.Select(p => p.Body));
        Assert.Equal([Http.Offset(10), Http.Offset(20), Http.Offset(25)], pages.Select(p => p.Next));
        Assert.Equal([false, false, true], pages.Select(p => p.UpToDate));
        Assert.All(pages, p => Assert.False(p.Closed));
        Assert.All(pages, p => Assert.Equal("application/octet-stream", p.ContentType));
    }

    [Fact]
    public async Task On_a_closed_stream_only_the_response_reaching_the_tail_says_closed()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "0123456789abcdefghijKLMNO", Ct, ("Stream-Closed", "true"));

        var pages = await ReadPagesAsync(name);

        Assert.Equal([false, false, true], pages.Select(p => p.Closed));
        Assert.Equal([false, false, true], pages.Select(p => p.UpToDate));
        using var eof = await _server.GetAsync($"{name}?offset={Http.Offset(25)}", Ct);
        Assert.Equal(HttpStatusCode.OK, eof.StatusCode);
        Assert.Empty(await eof.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal("true", Http.Header(eof, "Stream-Closed"));
        Assert.Equal("true", Http.Header(eof, "Stream-Up-To-Date"));
        Assert.Equal(Http.Offset(25), Http.Header(eof, "Stream-Next-Offset"));
    }

    [Fact]
    public async Task Data_spread_over_several_appends_is_split_at_the_cap_not_at_append_boundaries()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "abcdef", Ct);
        await _server.AppendAsync(name, "text/plain", "ghijkl", Ct);
        await _server.AppendAsync(name, "text/plain", "mn", Ct);

        var pages = await ReadPagesAsync(name);

        Assert.Equal(["abcdefghij", "klmn"], pages.Select(p => p.Body));
    }

    [Fact]
    public async Task A_capped_JSON_read_returns_whole_messages_as_valid_JSON_arrays()
    {
        var name = ServerHarness.NewName();
        string[] messages = ["{\"a\":1}", "[2,3]", "\"four\"", "{\"five\":\"a long message over ten bytes\"}", "6", "{\"b\":7}"];
        await _server.CreateAsync(name, "application/json", "[" + string.Join(",", messages) + "]", Ct);

        var pages = await ReadPagesAsync(name);

        Assert.True(pages.Count >= 4, $"Expected the cap to split the read, got {pages.Count} responses.");
        var received = new List<string>();
        foreach (var page in pages)
        {
            using var document = JsonDocument.Parse(page.Body);
            Assert.Equal(JsonValueKind.Array, document.RootElement.ValueKind);
            Assert.NotEqual(0, document.RootElement.GetArrayLength());
            received.AddRange(document.RootElement.EnumerateArray().Select(e => e.GetRawText()));
        }
        Assert.Equal(messages, received);
        Assert.Equal([.. Enumerable.Repeat(false, pages.Count - 1), true], pages.Select(p => p.UpToDate));
    }

    [Fact]
    public async Task A_fork_catch_up_stitches_inherited_and_own_data_across_the_cap()
    {
        var source = ServerHarness.NewName("src");
        var fork = ServerHarness.NewName("fork");
        await _server.CreateAsync(source, "text/plain", "0123456789abcdef", Ct);
        await _server.CreateAsync(fork, "text/plain", null, Ct,
            ("Stream-Forked-From", _server.Server.StreamsUrl.AbsolutePath + source), ("Stream-Fork-Offset", Http.Offset(8)));
        await _server.AppendAsync(fork, "text/plain", "XYZWV", Ct);
        await _server.AppendAsync(source, "text/plain", "not-in-fork", Ct);

        var pages = await ReadPagesAsync(fork);

        Assert.Equal("01234567XYZWV", string.Concat(pages.Select(p => p.Body)));
        Assert.Equal([Http.Offset(10), Http.Offset(13)], pages.Select(p => p.Next));
    }

    [Fact]
    public async Task A_long_poll_behind_the_tail_returns_one_capped_chunk_with_a_cursor_but_not_up_to_date()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", "0123456789abcdefghijKLMNO", Ct);

        using var response = await _server.GetAsync($"{name}?offset={Http.Offset(5)}&live=long-poll", Ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("56789abcde", await response.Content.ReadAsStringAsync(Ct));
        Assert.Equal(Http.Offset(15), Http.Header(response, "Stream-Next-Offset"));
        Assert.Null(Http.Header(response, "Stream-Up-To-Date"));
        Assert.NotNull(Http.Header(response, "Stream-Cursor"));
    }

    /// <summary>Follows Stream-Next-Offset from the start until a response is up to date.</summary>
    private async Task<List<Page>> ReadPagesAsync(string name)
    {
        var pages = new List<Page>();
        var offset = "-1";
        for (var i = 0; i < 100; i++)
        {
            using var response = await _server.GetAsync($"{name}?offset={offset}", Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var page = new Page(
                await response.Content.ReadAsStringAsync(Ct),
                Http.Header(response, "Stream-Next-Offset")!,
                Http.Header(response, "Stream-Up-To-Date") == "true",
                Http.Header(response, "Stream-Closed") == "true",
                response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(page.Body), response.Content.Headers.ContentLength);
            pages.Add(page);
            if (page.UpToDate)
            {
                return pages;
            }
            Assert.NotEqual(offset, page.Next);
            offset = page.Next;
        }
        throw new Xunit.Sdk.XunitException("The reads never became up to date.");
    }

    private sealed record Page(string Body, string Next, bool UpToDate, bool Closed, string? ContentType);
}
