namespace DurableStreams.Core;

/// <summary>
/// A store's view of where a stream's messages (JSON) or appends (other types) start and end, asked by the read and
/// fork rules. Stores implement it as a struct holding what they need, so the rules call it without a delegate or a
/// closure on the read path.
/// </summary>
public interface IStreamBoundaries
{
    /// <summary>True when <paramref name="position"/> starts a message of the stream (or is its start or tail).</summary>
    bool IsBoundary(long position);

    /// <summary>The end of the message (or append) containing <paramref name="position"/>, or the tail at the tail.</summary>
    long NextBoundary(long position);
}
