using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>The read rules every store shares: where a read starts.</summary>
public static class ReadRules
{
    /// <summary>
    /// Resolves the requested offset against the tail: <c>-1</c> is the retained start (0 unless retention dropped a
    /// prefix), <c>now</c> is the tail; a position past the tail, one below the retained start (410), or one that splits
    /// a JSON message, is refused.
    /// </summary>
    public static ReadStatus ResolveStart<TBoundaries>(OffsetQuery offset, long retainedStart, long tail, bool isJson, TBoundaries boundaries, out long start)
        where TBoundaries : IStreamBoundaries
    {
        start = offset.Kind switch
        {
            OffsetKind.Beginning => retainedStart,
            OffsetKind.Now => tail,
            _ => offset.Offset.Position,
        };
        if (start > tail)
        {
            return ReadStatus.OffsetBeyondTail;
        }
        if (start < retainedStart)
        {
            return ReadStatus.BeforeRetainedStart;
        }
        return isJson && start < tail && !boundaries.IsBoundary(start) ? ReadStatus.OffsetUnaligned : ReadStatus.Ok;
    }
}
