namespace DurableStreams.Core.Local;

/// <summary>How <see cref="BlockSearch"/> reads the stream position an item starts at.</summary>
internal interface IStartOf<T>
{
    static abstract long StartOf(in T item);
}

/// <summary>The binary search the memory store's message log and the file store's frame index share.</summary>
internal static class BlockSearch
{
    /// <summary>
    /// Index of the last of <paramref name="items"/> (starts strictly increasing, at least one item) that starts at or
    /// before <paramref name="position"/>; 0 when none does. Allocation-free: the start is read through a static member.
    /// </summary>
    public static int LastAtOrBefore<T, TStart>(ReadOnlySpan<T> items, long position)
        where TStart : IStartOf<T>
    {
        int lo = 0, hi = items.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) >>> 1;
            if (TStart.StartOf(items[mid]) <= position)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return lo;
    }
}
