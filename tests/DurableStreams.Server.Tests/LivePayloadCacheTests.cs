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
    private static ReadResult Read(long incarnation, long start, string data, bool closed = false, long generation = 0, string contentType = "text/plain")
    {
        var info = new StoredStreamInfo("s", incarnation, contentType, new StreamOffset(start + data.Length), closed, null, null, DateTimeOffset.UnixEpoch)
        {
            OffsetGeneration = generation,
        };
        var end = start + data.Length;
        return ReadResult.Served(info, start, end, end, closed, [Encoding.UTF8.GetBytes(data)]);
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
