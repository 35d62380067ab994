using DurableStreams.Live;

namespace DurableStreams.Storage.Memory;

/// <summary>
/// One stream in memory: its state, its own segments (one per stored message), and — for a fork — the source entry and
/// the position where the fork's own data begins. Bytes in a segment never change once added.
/// </summary>
internal sealed class MemoryStream(string name, long incarnation, StreamState state, MemoryStream? source, long forkPosition)
{
    public readonly object Gate = new();
    public string Name { get; } = name;
    public long Incarnation { get; } = incarnation;
    public StreamState State { get; } = state;
    public MemoryStream? Source { get; } = source;
    /// <summary>Start of this stream's own data: the fork position, or 0.</summary>
    public long BasePosition { get; } = forkPosition;
    public List<Segment> Segments { get; } = [];
    public StreamSignal Signal { get; } = new();

    /// <summary>Ticks of the last read or write, for the sliding TTL.</summary>
    public long LastAccessTicks;

    /// <summary>Forks that read through this stream; guarded by the store's structure lock.</summary>
    public int RefCount;
    /// <summary>Deleted while forks still need its data (410 to clients); guarded by the structure lock.</summary>
    public bool SoftDeleted;
    /// <summary>Gone for good; guarded by the structure lock.</summary>
    public bool Removed;

    public bool IsJson { get; } = Protocol.ContentTypes.IsJson(state.ContentType);

    public void AddSegment(ReadOnlyMemory<byte> data)
    {
        var start = Segments.Count == 0 ? BasePosition : Segments[^1].End;
        Segments.Add(new Segment(start, data));
    }

    /// <summary>Index of the own segment containing <paramref name="position"/>, or -1.</summary>
    public int FindSegment(long position)
    {
        int lo = 0, hi = Segments.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var segment = Segments[mid];
            if (position < segment.Start)
            {
                hi = mid - 1;
            }
            else if (position >= segment.End)
            {
                lo = mid + 1;
            }
            else
            {
                return mid;
            }
        }
        return -1;
    }
}

/// <summary>A stored message: its start position and bytes.</summary>
internal readonly record struct Segment(long Start, ReadOnlyMemory<byte> Data)
{
    public long End => Start + Data.Length;
}
