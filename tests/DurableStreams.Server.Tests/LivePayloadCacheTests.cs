using System.Text;
using DurableStreams.Core;
using DurableStreams.Protocol;
using DurableStreams.Server.Internal;
using Microsoft.AspNetCore.Http;
using Xunit;

namespace DurableStreams.Server.Tests;

/// <summary>The live delivery shared by every reader woken at one range, and the read query it is served for.</summary>
public sealed class LivePayloadCacheTests
{
    private static ReadResult Read(long incarnation, long start, string data, bool closed = false, long generation = 0, string contentType = "text/plain", long? tail = null)
    {
        var end = start + data.Length;
        var info = new StoredStreamInfo("s", incarnation, contentType, new StreamOffset(tail ?? end), closed, null, null, DateTimeOffset.UnixEpoch)
        {
            OffsetGeneration = generation,
        };
        return ReadResult.Served(info, start, end, tail ?? end, closed, [Encoding.UTF8.GetBytes(data)]);
    }

    [Fact]
    public void Readers_of_the_same_range_share_one_delivery_with_its_headers()
    {
        var cache = new LivePayloadCache();

        var first = cache.Get(Read(1, 10, "hello"), PayloadFormat.Raw);
        var second = cache.Get(Read(1, 10, "hello"), PayloadFormat.Raw);

        Assert.Same(first, second);
        Assert.Equal("hello", Encoding.UTF8.GetString(first.Body.Span));
        Assert.Equal(new StreamOffset(15).ToString(), first.NextOffset);
        Assert.Equal(ResultMapping.ETag(Read(1, 10, "hello")), first.ETag);
    }

    [Fact]
    public void A_delivery_is_never_served_for_another_range_incarnation_generation_closure_or_format()
    {
        var cache = new LivePayloadCache();
        var original = Read(1, 10, "hello");
        var delivered = cache.Get(original, PayloadFormat.Raw);

        ReadResult[] others =
        [
            Read(1, 15, "world"),                  // the next range
            Read(1, 10, "hell"),                   // same start, other end
            Read(2, 10, "HELLO"),                  // a new stream under the same name
            Read(1, 10, "hello", generation: 1),   // offsets of a later generation
            Read(1, 10, "hello", closed: true),    // the same bytes, now the stream's last
        ];
        foreach (var other in others)
        {
            var payload = cache.Get(other, PayloadFormat.Raw);
            Assert.NotSame(delivered, payload);
            Assert.Equal(Encoding.UTF8.GetString(((ReadOnlyMemory<byte>)other.Chunks[0]).Span), Encoding.UTF8.GetString(payload.Body.Span));
            Assert.Equal(other.Next.ToString(), payload.NextOffset);
            Assert.Equal(ResultMapping.ETag(other), payload.ETag);
        }
        var sse = cache.Get(original, PayloadFormat.SseText);
        Assert.NotSame(delivered, sse);
        Assert.StartsWith("event: data", Encoding.UTF8.GetString(sse.Body.Span), StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string?, bool, bool> SseFrames => new()
    {
        { "json", "{\"a\":1},", "1200", true, false },
        { "json", "{\"a\":1},{\"b\":\"x\\ny\"},", "1200", false, false },
        { "text", "line 1\r\n line 2\rend", "7", true, false },
        { "text", "hello", null, true, false },
        { "text", "last", "7", true, true },
        { "base64", "\u0000\u0001binary", "99", false, false },
        { "base64", "bytes", "99", true, true },
    };

    [Theory]
    [MemberData(nameof(SseFrames))]
    public void A_shared_SSE_frame_is_byte_equal_to_its_data_and_control_events_written_separately(
        string encoding, string data, string? cursor, bool upToDate, bool closed)
    {
        var format = encoding switch { "json" => PayloadFormat.SseJson, "text" => PayloadFormat.SseText, _ => PayloadFormat.SseBase64 };
        var contentType = format == PayloadFormat.SseJson ? "application/json" : "text/plain";
        var read = Read(1, 10, data, closed, generation: 3, contentType: contentType, tail: upToDate ? null : 10 + data.Length + 5);
        var expected = new System.Buffers.ArrayBufferWriter<byte>();
        switch (format)
        {
            case PayloadFormat.SseJson:
                SseFrameWriter.WriteJsonData(read.Chunks, expected);
                break;
            case PayloadFormat.SseText:
                SseFrameWriter.WriteTextData(read.Chunks, expected);
                break;
            default:
                SseFrameWriter.WriteBase64Data(read.Chunks, expected);
                break;
        }
        SseFrameWriter.WriteControl(new SseControl(read.Next, cursor, read.UpToDate, read.Closed), expected);

        var frame = new LivePayloadCache().Get(read, format).SseFrameFor(read, cursor);

        Assert.Equal(Encoding.UTF8.GetString(expected.WrittenSpan), Encoding.UTF8.GetString(frame.Span));
    }

    [Fact]
    public void Readers_at_one_range_share_an_SSE_frame_only_with_the_same_cursor_and_up_to_date_flag()
    {
        var cache = new LivePayloadCache();
        var atTail = Read(1, 10, "hello");
        var behindTail = Read(1, 10, "hello", tail: 20);

        var first = cache.Get(atTail, PayloadFormat.SseText).SseFrameFor(atTail, "100");
        var sameCursor = cache.Get(atTail, PayloadFormat.SseText).SseFrameFor(Read(1, 10, "hello"), new string("100".AsSpan()));
        var otherCursor = cache.Get(atTail, PayloadFormat.SseText).SseFrameFor(atTail, "101");
        var notUpToDate = cache.Get(behindTail, PayloadFormat.SseText).SseFrameFor(behindTail, "101");
        var back = cache.Get(atTail, PayloadFormat.SseText).SseFrameFor(atTail, "100");

        Assert.True(first.Equals(sameCursor));
        Assert.Contains("\"streamCursor\":\"100\"", Encoding.UTF8.GetString(first.Span), StringComparison.Ordinal);
        Assert.Contains("\"streamCursor\":\"101\"", Encoding.UTF8.GetString(otherCursor.Span), StringComparison.Ordinal);
        Assert.Contains("\"upToDate\":true", Encoding.UTF8.GetString(otherCursor.Span), StringComparison.Ordinal);
        Assert.DoesNotContain("upToDate", Encoding.UTF8.GetString(notUpToDate.Span), StringComparison.Ordinal);
        Assert.Contains("\"streamCursor\":\"100\"", Encoding.UTF8.GetString(back.Span), StringComparison.Ordinal);
        Assert.Contains("\"upToDate\":true", Encoding.UTF8.GetString(back.Span), StringComparison.Ordinal);
    }

    [Fact]
    public void ETags_are_weak_when_the_server_may_compress()
    {
        var payload = new LivePayloadCache(weakETags: true).Get(Read(1, 0, "x"), PayloadFormat.Raw);

        Assert.Equal("W/" + ResultMapping.ETag(Read(1, 0, "x")), payload.ETag);
    }

    [Fact]
    public void The_read_query_matches_names_like_the_query_collection()
    {
        var request = new DefaultHttpContext().Request;
        request.QueryString = new QueryString("?Offset=-1&LIVE=sse&cursor=a%20b&cursor=42");

        Assert.Null(RequestParsing.ParseRead(request, out var offset, out var mode, out var cursor));
        Assert.Equal(OffsetQuery.Beginning, offset);
        Assert.Equal(RequestParsing.LiveMode.Sse, mode);
        Assert.Equal("42", cursor);
    }

    [Theory]
    [InlineData("?offset=-1&offset=now", "Only one offset parameter is allowed.")]
    [InlineData("?offset=-1&live=sse&live=sse", "Only one live parameter is allowed.")]
    [InlineData("?live=long-poll", "Live reads require an offset.")]
    [InlineData("?offset=-1&live=SSE", "live must be 'long-poll' or 'sse'.")]
    [InlineData("?offset", "offset is not a valid offset, '-1' or 'now'.")]
    public void A_bad_read_query_is_refused_with_its_reason(string query, string message)
    {
        var request = new DefaultHttpContext().Request;
        request.QueryString = new QueryString(query);

        var error = RequestParsing.ParseRead(request, out _, out _, out _);

        Assert.Equal(message, error?.Message);
    }
}
