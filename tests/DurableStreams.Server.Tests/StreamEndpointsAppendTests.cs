using System.Net;
using DurableStreams.Server.Tests.Infrastructure;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>POST: every append outcome mapped to its status and headers.</summary>
public sealed class StreamEndpointsAppendTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly ServerHarness _server = fixture.Harness;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_append_without_producer_headers_answers_204_with_the_new_tail_and_no_body()
    {
        var name = await NewTextStreamAsync("ab");

        using var response = await _server.PostAsync(name, "text/plain", "cde", Ct);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(Http.Offset(5), Http.Header(response, "Stream-Next-Offset"));
        Assert.Null(Http.Header(response, "Stream-Closed"));
        Assert.Null(Http.Header(response, "Producer-Epoch"));
        Assert.Empty(await response.Content.ReadAsByteArrayAsync(Ct));
        Http.SecurityHeaders(response);
    }

    [Fact]
    public async Task A_new_producer_append_answers_200_echoing_epoch_and_seq()
    {
        var name = await NewTextStreamAsync();

        using var response = await _server.PostAsync(name, "text/plain", "x", Ct, Producer("p", "3", "0"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("3", Http.Header(response, "Producer-Epoch"));
        Assert.Equal("0", Http.Header(response, "Producer-Seq"));
        Assert.Equal(Http.Offset(1), Http.Header(response, "Stream-Next-Offset"));
    }

    [Fact]
    public async Task A_duplicate_producer_append_answers_204_with_the_highest_accepted_seq_and_writes_nothing()
    {
        var name = await NewTextStreamAsync();
        await _server.AppendAsync(name, "text/plain", "a", Ct, Producer("p", "1", "0"));
        await _server.AppendAsync(name, "text/plain", "b", Ct, Producer("p", "1", "1"));

        using var response = await _server.PostAsync(name, "text/plain", "a", Ct, Producer("p", "1", "0"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("1", Http.Header(response, "Producer-Epoch"));
        Assert.Equal("1", Http.Header(response, "Producer-Seq"));
        Assert.Equal(Http.Offset(2), Http.Header(response, "Stream-Next-Offset"));
        Assert.Equal("ab", (await _server.ReadAllAsync(name, Ct)).Body);
    }

    [Fact]
    public async Task A_stale_producer_epoch_answers_403_with_the_current_epoch()
    {
        var name = await NewTextStreamAsync();
        await _server.AppendAsync(name, "text/plain", "a", Ct, Producer("p", "5", "0"));

        using var response = await _server.PostAsync(name, "text/plain", "zombie", Ct, Producer("p", "4", "7"));

        await Http.ErrorAsync(response, HttpStatusCode.Forbidden);
        Assert.Equal("5", Http.Header(response, "Producer-Epoch"));
        Assert.Equal("a", (await _server.ReadAllAsync(name, Ct)).Body);
    }

    [Fact]
    public async Task A_producer_sequence_gap_answers_409_with_expected_and_received_seq()
    {
        var name = await NewTextStreamAsync();
        await _server.AppendAsync(name, "text/plain", "a", Ct, Producer("p", "0", "0"));

        using var response = await _server.PostAsync(name, "text/plain", "c", Ct, Producer("p", "0", "2"));

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
        Assert.Equal("1", Http.Header(response, "Producer-Expected-Seq"));
        Assert.Equal("2", Http.Header(response, "Producer-Received-Seq"));
        Assert.Null(Http.Header(response, "Stream-Closed"));
    }

    [Fact]
    public async Task A_first_producer_append_with_a_nonzero_seq_answers_409_expecting_0()
    {
        var name = await NewTextStreamAsync();

        using var response = await _server.PostAsync(name, "text/plain", "c", Ct, Producer("p", "0", "3"));

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
        Assert.Equal("0", Http.Header(response, "Producer-Expected-Seq"));
        Assert.Equal("3", Http.Header(response, "Producer-Received-Seq"));
    }

    [Fact]
    public async Task A_new_epoch_that_does_not_start_at_seq_0_answers_400()
    {
        var name = await NewTextStreamAsync();
        await _server.AppendAsync(name, "text/plain", "a", Ct, Producer("p", "0", "0"));

        using var response = await _server.PostAsync(name, "text/plain", "b", Ct, Producer("p", "1", "1"));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task An_append_to_a_closed_stream_answers_409_with_Stream_Closed_and_the_final_offset()
    {
        var name = await NewTextStreamAsync("abcd");
        await _server.CloseAsync(name, Ct);

        using var response = await _server.PostAsync(name, "text/plain", "late", Ct);

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
        Assert.Equal("true", Http.Header(response, "Stream-Closed"));
        Assert.Equal(Http.Offset(4), Http.Header(response, "Stream-Next-Offset"));
    }

    [Fact]
    public async Task Closing_an_already_closed_stream_answers_204_with_Stream_Closed()
    {
        var name = await NewTextStreamAsync("ab");
        await _server.CloseAsync(name, Ct);

        using var response = await _server.PostAsync(name, "application/json", null, Ct, ("Stream-Closed", "true"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("true", Http.Header(response, "Stream-Closed"));
        Assert.Equal(Http.Offset(2), Http.Header(response, "Stream-Next-Offset"));
    }

    [Fact]
    public async Task An_append_and_close_answers_204_with_Stream_Closed_and_the_final_offset()
    {
        var name = await NewTextStreamAsync("ab");

        using var response = await _server.PostAsync(name, "text/plain", "cd", Ct, ("Stream-Closed", "true"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("true", Http.Header(response, "Stream-Closed"));
        Assert.Equal(Http.Offset(4), Http.Header(response, "Stream-Next-Offset"));
    }

    [Theory]
    [InlineData("Producer-Id")]
    [InlineData("Producer-Epoch")]
    [InlineData("Producer-Seq")]
    [InlineData("Producer-Id", "Producer-Epoch")]
    [InlineData("Producer-Id", "Producer-Seq")]
    [InlineData("Producer-Epoch", "Producer-Seq")]
    public async Task Partial_producer_headers_answer_400_and_append_nothing(params string[] present)
    {
        var name = await NewTextStreamAsync();
        var values = new Dictionary<string, string> { ["Producer-Id"] = "p", ["Producer-Epoch"] = "0", ["Producer-Seq"] = "0" };

        using var response = await _server.PostAsync(name, "text/plain", "x", Ct, [.. present.Select(h => (h, values[h]))]);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Fact]
    public async Task An_empty_Producer_Id_answers_400()
    {
        var name = await NewTextStreamAsync();

        using var response = await _server.PostAsync(name, "text/plain", "x", Ct, Producer("", "0", "0"));

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("1.5")]
    [InlineData("1e3")]
    [InlineData("abc")]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("9007199254740992")]
    [InlineData("99999999999999999999")]
    public async Task A_malformed_producer_epoch_or_seq_answers_400(string bad)
    {
        var name = await NewTextStreamAsync();

        using var badEpoch = await _server.PostAsync(name, "text/plain", "x", Ct, Producer("p", bad, "0"));
        using var badSeq = await _server.PostAsync(name, "text/plain", "x", Ct, Producer("p", "0", bad));

        await Http.ErrorAsync(badEpoch, HttpStatusCode.BadRequest);
        await Http.ErrorAsync(badSeq, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Fact]
    public async Task The_largest_safe_integer_is_an_accepted_producer_epoch()
    {
        var name = await NewTextStreamAsync();

        using var response = await _server.PostAsync(name, "text/plain", "x", Ct, Producer("p", "9007199254740991", "0"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("9007199254740991", Http.Header(response, "Producer-Epoch"));
    }

    [Fact]
    public async Task An_empty_body_without_Stream_Closed_answers_400()
    {
        var name = await NewTextStreamAsync("ab");

        using var response = await _server.PostAsync(name, "text/plain", "", Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 2);
    }

    [Fact]
    public async Task A_body_without_Content_Type_answers_400()
    {
        var name = await NewTextStreamAsync();

        using var response = await _server.PostAsync(name, null, "data", Ct);

        Assert.Null(response.RequestMessage!.Content!.Headers.ContentType);
        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Fact]
    public async Task A_body_with_an_invalid_Content_Type_answers_400()
    {
        var name = await NewTextStreamAsync();
        using var request = ServerHarness.Request(HttpMethod.Post, name, new ByteArrayContent("x"u8.ToArray()));
        Assert.True(request.Content!.Headers.TryAddWithoutValidation("Content-Type", "not a media type"));

        using var response = await _server.SendAsync(request, Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Fact]
    public async Task A_body_with_a_different_content_type_answers_409()
    {
        var name = await NewTextStreamAsync();

        using var response = await _server.PostAsync(name, "application/json", "{}", Ct);

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
        Assert.Null(Http.Header(response, "Stream-Closed"));
    }

    [Fact]
    public async Task A_Stream_Seq_that_does_not_increase_answers_409()
    {
        var name = await NewTextStreamAsync();
        await _server.AppendAsync(name, "text/plain", "a", Ct, ("Stream-Seq", "b"));

        using var response = await _server.PostAsync(name, "text/plain", "b", Ct, ("Stream-Seq", "a"));

        await Http.ErrorAsync(response, HttpStatusCode.Conflict);
        await AssertTailAsync(name, 1);
    }

    [Theory]
    [InlineData("{\"a\":")]
    [InlineData("[1,]")]
    [InlineData("{} {}")]
    [InlineData("undefined")]
    public async Task Invalid_JSON_on_a_JSON_stream_answers_400_and_appends_nothing(string body)
    {
        var name = await NewJsonStreamAsync();

        using var response = await _server.PostAsync(name, "application/json", body, Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Fact]
    public async Task An_empty_JSON_array_append_answers_400()
    {
        var name = await NewJsonStreamAsync();

        using var response = await _server.PostAsync(name, "application/json", "[]", Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Theory]
    [InlineData('[')]
    [InlineData('{')]
    public async Task JSON_nested_far_deeper_than_64_levels_answers_400_not_500(char opener)
    {
        var name = await NewJsonStreamAsync();
        var body = opener == '[' ? new string('[', 100_000) : string.Concat(Enumerable.Repeat("{\"a\":", 100_000));

        using var response = await _server.PostAsync(name, "application/json", body, Ct);

        await Http.ErrorAsync(response, HttpStatusCode.BadRequest);
        await AssertTailAsync(name, 0);
    }

    [Fact]
    public async Task A_JSON_array_append_flattens_into_messages()
    {
        var name = await NewJsonStreamAsync();

        using var response = await _server.PostAsync(name, "application/json", "[{\"a\":1},[2],3]", Ct);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("[{\"a\":1},[2],3]", (await _server.ReadAllAsync(name, Ct)).Body);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_append_larger_than_Kestrel_default_30_MB_limit_is_accepted_under_the_64_MiB_default(bool chunked)
    {
        var name = await NewTextStreamAsync();
        var body = new byte[31 * 1024 * 1024];
        body.AsSpan().Fill((byte)'x');
        HttpContent content = chunked ? new ChunkedContent(body, "application/octet-stream", 1024 * 1024) : ServerHarness.Body("application/octet-stream", body)!;
        using (var create = await _server.PutAsync(name + "-bin", "application/octet-stream", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Created, create.StatusCode);
        }

        using var response = await _server.SendAsync(HttpMethod.Post, name + "-bin", content, Ct);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(Http.Offset(body.Length), Http.Header(response, "Stream-Next-Offset"));
    }

    [Theory]
    [InlineData("Producer-Id", "p")]
    [InlineData("Producer-Epoch", "0")]
    [InlineData("Producer-Seq", "0")]
    [InlineData("Stream-Seq", "0002")]
    public async Task A_producer_or_Stream_Seq_header_sent_twice_is_400_and_writes_nothing(string header, string second)
    {
        var name = await NewTextStreamAsync();
        var headers = new List<string> { "Producer-Id: p", "Producer-Epoch: 0", "Producer-Seq: 0", "Stream-Seq: 0001", $"{header}: {second}" };

        var response = await RawPostAsync(name, headers, "x");

        Assert.StartsWith("HTTP/1.1 400", response, StringComparison.Ordinal);
        Assert.Contains($"{header} must be sent at most once.", response, StringComparison.Ordinal);
        using var read = await _server.GetAsync(name + "?offset=-1", Ct);
        Assert.Empty(await read.Content.ReadAsByteArrayAsync(Ct));
    }

    [Fact]
    public async Task A_Producer_Id_of_the_maximum_length_is_accepted_and_one_byte_more_is_400()
    {
        var name = await NewTextStreamAsync();
        var longest = new string('p', ProducerRules.MaxIdBytes);

        using var accepted = await _server.PostAsync(name, "text/plain", "x", Ct, Producer(longest, "0", "0"));
        using var refused = await _server.PostAsync(name, "text/plain", "y", Ct, Producer(longest + "a", "0", "0"));

        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains($"at most {ProducerRules.MaxIdBytes} bytes", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        using var read = await _server.GetAsync(name + "?offset=-1", Ct);
        Assert.Equal("x", await read.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task A_Stream_Seq_of_the_maximum_length_is_accepted_and_one_byte_more_is_400()
    {
        var name = await NewTextStreamAsync();
        var longest = new string('1', ProducerRules.MaxStreamSeqBytes);

        using var accepted = await _server.PostAsync(name, "text/plain", "x", Ct, ("Stream-Seq", longest));
        using var refused = await _server.PostAsync(name, "text/plain", "y", Ct, ("Stream-Seq", longest + "2"));

        Assert.Equal(HttpStatusCode.NoContent, accepted.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains($"at most {ProducerRules.MaxStreamSeqBytes} bytes", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        using var read = await _server.GetAsync(name + "?offset=-1", Ct);
        Assert.Equal("x", await read.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>Sends a POST over a raw socket, so a header can appear on two lines exactly as written.</summary>
    private async Task<string> RawPostAsync(string name, IEnumerable<string> headers, string body)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, _server.Server.Port, Ct);
        var request = new System.Text.StringBuilder()
            .Append("POST ").Append(_server.Url(name).AbsolutePath).Append(" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: text/plain\r\n")
            .Append("Content-Length: ").Append(System.Text.Encoding.UTF8.GetByteCount(body)).Append("\r\n");
        foreach (var header in headers)
        {
            request.Append(header).Append("\r\n");
        }
        request.Append("\r\n").Append(body);
        await socket.SendAsync(System.Text.Encoding.UTF8.GetBytes(request.ToString()), Ct);
        var received = new System.Text.StringBuilder();
        var buffer = new byte[4096];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, Ct)) > 0)
        {
            received.Append(System.Text.Encoding.UTF8.GetString(buffer, 0, read));
        }
        return received.ToString();
    }

    private static (string, string)[] Producer(string id, string epoch, string seq) =>
        [("Producer-Id", id), ("Producer-Epoch", epoch), ("Producer-Seq", seq)];

    private async Task<string> NewTextStreamAsync(string? body = null)
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "text/plain", body, Ct);
        return name;
    }

    private async Task<string> NewJsonStreamAsync()
    {
        var name = ServerHarness.NewName();
        await _server.CreateAsync(name, "application/json", null, Ct);
        return name;
    }

    private async Task AssertTailAsync(string name, long position)
    {
        using var head = await _server.SendAsync(HttpMethod.Head, name, null, Ct);
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(Http.Offset(position), Http.Header(head, "Stream-Next-Offset"));
    }
}
