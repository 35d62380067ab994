namespace DurableStreams.Core.Local;

/// <summary>
/// A store's index of the messages in one stream's own data (the memory store's message log, the file store's frame
/// index), asked by <see cref="ForkChain"/> under that stream's gate. Implemented by a struct, so the chain walk calls
/// it without a delegate.
/// </summary>
internal interface IMessageIndex<TStream>
{
    /// <summary>True when a message starts at <paramref name="position"/>, which lies in <paramref name="owner"/>'s own data.</summary>
    bool IsMessageStart(TStream owner, long position);

    /// <summary>
    /// The end of <paramref name="owner"/>'s message containing <paramref name="position"/>, or <paramref name="end"/>
    /// when the position is past its last message.
    /// </summary>
    long MessageEnd(TStream owner, long position, long end);
}

/// <summary>
/// A fork reads its source's bytes below its fork position, and the source its own source's, up the chain. These walk
/// that chain in a loop, not by recursion: chains may be as deep as <c>MaxForkDepth</c>.
/// </summary>
internal static class ForkChain
{
    /// <summary>
    /// The stream of <paramref name="stream"/>'s fork chain that stores <paramref name="position"/>: the first, going up
    /// from the stream, whose own data starts at or before it. <paramref name="limit"/> is where that stream's part of
    /// the chain ends (the fork position it was reached through), or <see cref="long.MaxValue"/> for the stream itself.
    /// </summary>
    public static TStream Owner<TStream>(TStream stream, long position, out long limit)
        where TStream : LocalStream<TStream>
    {
        limit = long.MaxValue;
        while (stream.Source is { } source && position < stream.BasePosition)
        {
            limit = stream.BasePosition;
            stream = source;
        }
        return stream;
    }

    /// <summary>
    /// Evaluates a PUT for a free name (<see cref="CreateRules.Evaluate"/>) with <paramref name="source"/> as its fork
    /// source: the stream the fork names, or null when there is none (or the PUT is not a fork).
    /// </summary>
    public static CreateDecision EvaluateCreate<TStream, TIndex>(CreateStreamRequest request, TStream? source, TIndex index, CreateLimits limits, DateTimeOffset now)
        where TStream : LocalStream<TStream>
        where TIndex : struct, IMessageIndex<TStream>
    {
        if (source is null)
        {
            return CreateRules.Evaluate(request, null, default(ChainBoundaries<TStream, TIndex>), limits, now);
        }
        var view = source.AsForkSource(now);
        return CreateRules.Evaluate(request, view, new ChainBoundaries<TStream, TIndex>(source, view.Tail, index), limits, now);
    }

    /// <summary>True when <paramref name="position"/> starts a message (or is the start or tail) of the stream.</summary>
    public static bool IsBoundary<TStream, TIndex>(TStream stream, long position, TIndex index)
        where TStream : LocalStream<TStream>
        where TIndex : struct, IMessageIndex<TStream>
    {
        var owner = Owner(stream, position, out _);
        lock (owner.Gate)
        {
            return position == owner.BasePosition || position == owner.ReaderState.Tail || index.IsMessageStart(owner, position);
        }
    }

    /// <summary>The end of the message (JSON) or append containing <paramref name="position"/>, or <paramref name="tail"/>.</summary>
    public static long NextBoundary<TStream, TIndex>(TStream stream, long position, long tail, TIndex index)
        where TStream : LocalStream<TStream>
        where TIndex : struct, IMessageIndex<TStream>
    {
        var owner = Owner(stream, position, out var limit);
        var end = limit == long.MaxValue ? tail : limit;
        lock (owner.Gate)
        {
            return Math.Min(index.MessageEnd(owner, position, end), end);
        }
    }
}

/// <summary>A stream's boundaries through its fork chain, for the read and fork rules.</summary>
/// <param name="stream">The stream.</param>
/// <param name="tail">Its tail as the caller read it.</param>
/// <param name="index">The store's message index.</param>
internal readonly struct ChainBoundaries<TStream, TIndex>(TStream stream, long tail, TIndex index) : IStreamBoundaries
    where TStream : LocalStream<TStream>
    where TIndex : struct, IMessageIndex<TStream>
{
    public bool IsBoundary(long position) => ForkChain.IsBoundary(stream, position, index);

    public long NextBoundary(long position) => ForkChain.NextBoundary(stream, position, tail, index);
}
