using DurableStreams.Protocol;
using DurableStreams.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;

namespace DurableStreams.Server.Internal;

/// <summary>Turns protocol headers and query parameters into Core requests, or a 400 with a reason.</summary>
internal static class RequestParsing
{
    /// <summary><c>Stream-Closed</c> counts only when it is exactly "true", case-insensitively (§4.1).</summary>
    public static bool IsClosedFlag(IHeaderDictionary headers) =>
        string.Equals(headers[ProtocolHeaders.StreamClosed].ToString().Trim(), "true", StringComparison.OrdinalIgnoreCase);

    private static string? Single(IHeaderDictionary headers, string name)
    {
        var values = headers[name];
        return values.Count == 0 ? null : values.ToString();
    }

    /// <summary>
    /// A header that must appear at most once: two header lines are refused rather than joined with commas, so a
    /// proxy and this server cannot read different values (a joined <c>Producer-Seq</c> would be "1,2").
    /// </summary>
    private static HttpError? Once(IHeaderDictionary headers, string name, out string? value)
    {
        var values = headers[name];
        value = values.Count == 0 ? null : values[0];
        return values.Count > 1 ? HttpError.BadRequest($"{name} must be sent at most once.") : null;
    }

    private static readonly HttpError s_invalidContentType = HttpError.BadRequest("Content-Type is not a valid media type.");

    /// <summary>The one media-type check of requests: 400 when a Content-Type is given that is not a <c>type/subtype</c> pair.</summary>
    public static HttpError? CheckContentType(string? contentType) =>
        contentType is not null && ContentTypes.MediaType(contentType) is null ? s_invalidContentType : null;

    public static HttpError? ParseCreate(HttpRequest request, string streamsPath, out CreateStreamRequest? create)
    {
        create = null;
        var headers = request.Headers;
        var contentType = Single(headers, "Content-Type");
        if (CheckContentType(contentType) is { } invalid)
        {
            return invalid;
        }

        long? ttl = null;
        DateTimeOffset? expiresAt = null;
        if (Single(headers, ProtocolHeaders.StreamTtl) is { } ttlText)
        {
            if (!ExpiryRules.TryParseTtl(ttlText, out var seconds))
            {
                return HttpError.BadRequest("Stream-TTL must be a non-negative integer number of seconds without sign, leading zeros or fraction.");
            }
            ttl = seconds;
        }
        if (Single(headers, ProtocolHeaders.StreamExpiresAt) is { } expiresText)
        {
            if (!ExpiryRules.TryParseExpiresAt(expiresText, out var at))
            {
                return HttpError.BadRequest("Stream-Expires-At must be an RFC 3339 timestamp.");
            }
            expiresAt = at;
        }
        if (ttl is not null && expiresAt is not null)
        {
            return HttpError.BadRequest("Stream-TTL and Stream-Expires-At cannot both be set.");
        }

        var forkedFrom = Single(headers, ProtocolHeaders.StreamForkedFrom);
        var forkOffsetText = Single(headers, ProtocolHeaders.StreamForkOffset);
        var subOffsetText = Single(headers, ProtocolHeaders.StreamForkSubOffset);
        ForkRequest? fork = null;
        if (forkedFrom is null)
        {
            if (forkOffsetText is not null || subOffsetText is not null)
            {
                return HttpError.BadRequest("Stream-Fork-Offset and Stream-Fork-Sub-Offset require Stream-Forked-From.");
            }
        }
        else
        {
            var sourceName = StreamName.FromForkSource(forkedFrom, streamsPath);
            if (sourceName is null)
            {
                return HttpError.BadRequest("Stream-Forked-From must be the path of a stream on this server.");
            }
            StreamOffset? forkOffset = null;
            if (forkOffsetText is not null)
            {
                if (!StreamOffset.TryParse(forkOffsetText, out var parsed))
                {
                    return HttpError.BadRequest("Stream-Fork-Offset is not a valid offset.");
                }
                forkOffset = parsed;
            }
            long subOffset = 0;
            if (subOffsetText is not null && !StrictInteger.TryParse(subOffsetText, allowLeadingZeros: false, out subOffset))
            {
                return HttpError.BadRequest("Stream-Fork-Sub-Offset must be a non-negative integer without sign or leading zeros.");
            }
            if (subOffset > 0 && forkOffset is null)
            {
                return HttpError.BadRequest("Stream-Fork-Sub-Offset requires Stream-Fork-Offset.");
            }
            fork = new ForkRequest(sourceName, forkOffset, subOffset);
        }

        create = new CreateStreamRequest
        {
            ContentType = contentType?.Trim(),
            TtlSeconds = ttl,
            ExpiresAt = expiresAt,
            Closed = IsClosedFlag(headers),
            Fork = fork,
        };
        return null;
    }

    public static HttpError? ParseAppend(HttpRequest request, out AppendRequest? append)
    {
        append = null;
        var headers = request.Headers;
        var contentType = Single(headers, "Content-Type");

        var idError = Once(headers, ProtocolHeaders.ProducerId, out var id);
        var epochError = Once(headers, ProtocolHeaders.ProducerEpoch, out var epochText);
        var seqError = Once(headers, ProtocolHeaders.ProducerSeq, out var seqText);
        var streamSeqError = Once(headers, ProtocolHeaders.StreamSeq, out var streamSeq);
        if ((idError ?? epochError ?? seqError ?? streamSeqError) is { } duplicate)
        {
            return duplicate;
        }
        if (streamSeq is not null && System.Text.Encoding.UTF8.GetByteCount(streamSeq) > ProducerRules.MaxStreamSeqBytes)
        {
            return HttpError.BadRequest($"Stream-Seq must be at most {ProducerRules.MaxStreamSeqBytes} bytes of UTF-8.");
        }
        ProducerClaim? producer = null;
        var present = (id is null ? 0 : 1) + (epochText is null ? 0 : 1) + (seqText is null ? 0 : 1);
        if (present is 1 or 2)
        {
            return HttpError.BadRequest("Producer-Id, Producer-Epoch and Producer-Seq must be sent together.");
        }
        if (present == 3)
        {
            if (string.IsNullOrEmpty(id))
            {
                return HttpError.BadRequest("Producer-Id must not be empty.");
            }
            if (System.Text.Encoding.UTF8.GetByteCount(id) > ProducerRules.MaxIdBytes)
            {
                return HttpError.BadRequest($"Producer-Id must be at most {ProducerRules.MaxIdBytes} bytes of UTF-8.");
            }
            if (!StrictInteger.TryParse(epochText, allowLeadingZeros: true, out var epoch))
            {
                return HttpError.BadRequest("Producer-Epoch must be an integer between 0 and 2^53-1.");
            }
            if (!StrictInteger.TryParse(seqText, allowLeadingZeros: true, out var seq))
            {
                return HttpError.BadRequest("Producer-Seq must be an integer between 0 and 2^53-1.");
            }
            producer = new ProducerClaim(id, epoch, seq);
        }

        append = new AppendRequest
        {
            ContentType = contentType?.Trim(),
            StreamSeq = streamSeq,
            Producer = producer,
            Close = IsClosedFlag(headers),
        };
        return null;
    }

    /// <summary>The read mode from <c>live</c>.</summary>
    public enum LiveMode
    {
        CatchUp,
        LongPoll,
        Sse,
    }

    /// <summary>
    /// The read's query: <c>offset</c>, <c>live</c> and <c>cursor</c>, matched like <see cref="HttpRequest.Query"/>
    /// (names case-insensitively, values decoded) but read straight from the query string: a live request holds no
    /// parsed query collection for its whole life, and a long-poll allocates none per request.
    /// </summary>
    public static HttpError? ParseRead(HttpRequest request, out OffsetQuery offset, out LiveMode mode, out string? cursor)
    {
        offset = OffsetQuery.Beginning;
        mode = LiveMode.CatchUp;
        cursor = null;
        var lives = 0;
        var offsets = 0;
        ReadOnlyMemory<char> live = default;
        ReadOnlyMemory<char> offsetText = default;
        ReadOnlyMemory<char> cursorText = default;
        var hasCursor = false;
        foreach (var pair in new QueryStringEnumerable(request.QueryString.Value))
        {
            var name = pair.DecodeName().Span;
            if (name.Equals(ProtocolQuery.Live, StringComparison.OrdinalIgnoreCase))
            {
                lives++;
                live = pair.DecodeValue();
            }
            else if (name.Equals(ProtocolQuery.Offset, StringComparison.OrdinalIgnoreCase))
            {
                offsets++;
                offsetText = pair.DecodeValue();
            }
            else if (name.Equals(ProtocolQuery.Cursor, StringComparison.OrdinalIgnoreCase))
            {
                hasCursor = true;
                cursorText = pair.DecodeValue();
            }
        }

        if (lives > 1)
        {
            return HttpError.BadRequest("Only one live parameter is allowed.");
        }
        if (lives == 1)
        {
            var value = live.Span;
            mode = value.SequenceEqual(ProtocolQuery.LongPoll) ? LiveMode.LongPoll
                : value.SequenceEqual(ProtocolQuery.Sse) ? LiveMode.Sse
                : (LiveMode)(-1);
            if ((int)mode < 0)
            {
                return HttpError.BadRequest("live must be 'long-poll' or 'sse'.");
            }
        }

        if (offsets > 1)
        {
            return HttpError.BadRequest("Only one offset parameter is allowed.");
        }
        if (offsets == 0)
        {
            if (mode != LiveMode.CatchUp)
            {
                return HttpError.BadRequest("Live reads require an offset.");
            }
        }
        else if (!OffsetQuery.TryParse(offsetText.ToString(), out offset))
        {
            return HttpError.BadRequest("offset is not a valid offset, '-1' or 'now'.");
        }

        if (hasCursor)
        {
            cursor = cursorText.ToString();
        }
        return null;
    }
}
