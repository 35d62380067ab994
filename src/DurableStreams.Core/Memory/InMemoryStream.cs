using DurableStreams.Core.Live;

namespace DurableStreams.Core.Memory;

/// <summary>
/// One stream in memory: its state, its own bytes (<see cref="MessageLog"/>), and — for a fork — the source entry and
/// the position where the fork's own data begins.
/// </summary>
internal sealed class InMemoryStream(string name, long incarnation, StreamState state, InMemoryStream? source, long forkPosition)
{
    public readonly object Gate = new();
    public string Name { get; } = name;
    public long Incarnation { get; } = incarnation;
    public StreamState State { get; } = state;
    public InMemoryStream? Source { get; } = source;
    /// <summary>Forks between this stream and the root of its chain: 0 for a stream that is not a fork.</summary>
    public int Depth { get; } = source is null ? 0 : source.Depth + 1;
    /// <summary>Start of this stream's own data: the fork position, or 0.</summary>
    public long BasePosition { get; } = forkPosition;
    /// <summary>The stream's own bytes, from <see cref="BasePosition"/>; guarded by <see cref="Gate"/>.</summary>
    public MessageLog Log { get; } = new(forkPosition);
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
}
