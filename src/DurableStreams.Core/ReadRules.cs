using DurableStreams.Protocol;

namespace DurableStreams.Core;

/// <summary>The read rules every store shares: where a read starts.</summary>
public static class ReadRules
{
    /// <summary>
    /// Resolves the requested offset against the tail: <c>-1</c> is the retained start (0 unless retention or compaction
    /// dropped a prefix), <c>now</c> is the tail; a position past the tail, one below the retained start (410), one that
    /// splits a JSON message, or an offset that is not current in the stream's offset <paramref name="space"/>, is refused.
    /// </summary>
    /// <remarks>
    /// Offsets and compaction (issue 18): an offset of a generation past the stream's current one was never issued (400,
    /// <see cref="ReadStatus.OffsetNotIssued"/>); one of an earlier generation below the last compaction's end points into
    /// data the snapshot replaced, so its reader must start again from <c>-1</c> (410, like an offset below the retained
    /// start), even where its position is now inside the snapshot.
    /// </remarks>
    public static ReadStatus ResolveStart<TBoundaries>(OffsetQuery offset, OffsetSpace space, long retainedStart, long tail, bool isJson, TBoundaries boundaries, out long start)
        where TBoundaries : IStreamBoundaries
    {
        start = offset.Kind switch
        {
            OffsetKind.Beginning => retainedStart,
            OffsetKind.Now => tail,
            _ => offset.Offset.Position,
        };
        if (offset.Kind == OffsetKind.At && CheckGeneration(offset.Offset, space) is var generation and not ReadStatus.Ok)
        {
            return generation;
        }
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

    /// <summary>
    /// Whether <paramref name="offset"/> is current in <paramref name="space"/>: <see cref="ReadStatus.OffsetNotIssued"/>
    /// for a generation past the current one, <see cref="ReadStatus.BeforeRetainedStart"/> for an earlier generation's
    /// offset below the compacted end, else <see cref="ReadStatus.Ok"/>. Stores that re-check a read which raced a
    /// compaction ask this again with the space after it.
    /// </summary>
    public static ReadStatus CheckGeneration(StreamOffset offset, OffsetSpace space) =>
        offset.Generation > space.Generation ? ReadStatus.OffsetNotIssued
        : offset.Generation < space.Generation && offset.Position < space.CompactedEnd ? ReadStatus.BeforeRetainedStart
        : ReadStatus.Ok;
}
