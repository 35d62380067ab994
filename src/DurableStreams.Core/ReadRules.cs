using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>The read rules every store shares: where a read starts.</summary>
public static class ReadRules
{
    /// <summary>
    /// Resolves the requested offset against the tail: <c>-1</c> is 0, <c>now</c> is the tail; a position past the
    /// tail, or one that splits a JSON message, is refused.
    /// </summary>
    public static ReadStatus ResolveStart<TBoundaries>(OffsetQuery offset, long tail, bool isJson, TBoundaries boundaries, out long start)
        where TBoundaries : IStreamBoundaries
    {
        start = offset.Kind switch
        {
            OffsetKind.Beginning => 0L,
            OffsetKind.Now => tail,
            _ => offset.Offset.Position,
        };
        if (start > tail)
        {
            return ReadStatus.OffsetBeyondTail;
        }
        return isJson && start < tail && !boundaries.IsBoundary(start) ? ReadStatus.OffsetUnaligned : ReadStatus.Ok;
    }
}
