namespace DurableStreams.Server.Internal;

/// <summary>
/// Counts live readers (long-poll and SSE requests in progress) and enforces
/// <see cref="DurableStreamsOptions.MaxLiveReaders"/>. Two interlocked operations per live request; nothing is allocated.
/// </summary>
internal sealed class LiveReaderGate(int? maxLiveReaders)
{
    private int _longPoll;
    private int _sse;
    private int _total;

    public int LongPoll => Volatile.Read(ref _longPoll);

    public int Sse => Volatile.Read(ref _sse);

    /// <summary>Takes a slot; false (and nothing taken) when the cap is reached.</summary>
    public bool TryEnter(bool sse)
    {
        if (Interlocked.Increment(ref _total) > (maxLiveReaders ?? int.MaxValue))
        {
            Interlocked.Decrement(ref _total);
            return false;
        }
        Interlocked.Increment(ref sse ? ref _sse : ref _longPoll);
        return true;
    }

    public void Exit(bool sse)
    {
        Interlocked.Decrement(ref sse ? ref _sse : ref _longPoll);
        Interlocked.Decrement(ref _total);
    }
}
