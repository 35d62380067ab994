namespace DurableStreams.Protocol;

/// <summary>What a read's <c>offset</c> parameter asked for.</summary>
public enum OffsetKind
{
    /// <summary><c>-1</c> or absent: the start of the stream.</summary>
    Beginning,
    /// <summary><c>now</c>: the current tail.</summary>
    Now,
    /// <summary>A server-issued offset.</summary>
    At,
}

/// <summary>A parsed read offset: a sentinel or a concrete position.</summary>
public readonly record struct OffsetQuery(OffsetKind Kind, StreamOffset Offset)
{
    public static OffsetQuery Beginning => new(OffsetKind.Beginning, StreamOffset.Zero);
    public static OffsetQuery Now => new(OffsetKind.Now, StreamOffset.Zero);
    public static OffsetQuery At(StreamOffset offset) => new(OffsetKind.At, offset);

    /// <summary>Parses <c>-1</c>, <c>now</c> or a formatted offset.</summary>
    public static bool TryParse(string? text, out OffsetQuery query)
    {
        switch (text)
        {
            case ProtocolQuery.BeginningSentinel:
                query = Beginning;
                return true;
            case ProtocolQuery.NowSentinel:
                query = Now;
                return true;
        }
        if (StreamOffset.TryParse(text, out var offset))
        {
            query = At(offset);
            return true;
        }
        query = default;
        return false;
    }
}
