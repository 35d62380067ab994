using DurableStreams.Core.Local;

namespace DurableStreams.Core.Memory;

/// <summary>
/// A memory stream's own bytes, packed: appends are copied back to back into blocks, and each append's start position
/// is kept for the message boundaries (JSON reads and forks need them). That costs ~8 B per append instead of an array
/// of its own (24 B header plus padding) and a 24 B segment entry, and hands readers a few large slices instead of one
/// per message.
/// </summary>
/// <remarks>
/// Blocks grow with the stream — a new block is as large as everything stored before it, between 64 B and
/// <see cref="MaxBlockBytes"/> — so a small stream wastes at most about its own size and a large one less than one block.
/// The remainder of an append too large for that gets one block of exactly its size. Every block but the last is
/// full. Callers write under the stream's gate; bytes once written never change, so a slice taken under the gate can be
/// read after leaving it.
/// </remarks>
internal sealed class MessageLog(long start)
{
    /// <summary>Largest shared block: below the large-object heap's 85,000 B, so blocks stay compactable.</summary>
    public const int MaxBlockBytes = 64 * 1024;
    private const int MinBlockBytes = 64;

    // Arrays with counts rather than lists: two objects fewer per stream, and nothing allocated until the first append.
    private Block[] _blocks = [];
    private int _blockCount;
    private long[] _messageStarts = [];
    private int _messageCount;
    private int _lastBlockUsed;

    /// <summary>Position of the first byte (the fork position, or 0).</summary>
    public long Start { get; } = start;

    /// <summary>
    /// Position of the first byte still readable: <see cref="Start"/> until retention drops a prefix
    /// (<see cref="DropBelow"/>). Bytes below it may still sit in a block that straddles it, but are never sliced.
    /// </summary>
    public long Retained { get; private set; } = start;

    /// <summary>Position just past the last byte.</summary>
    public long End { get; private set; } = start;

    /// <summary>Bytes allocated for blocks, used or not.</summary>
    public long Capacity
    {
        get
        {
            var capacity = 0L;
            foreach (var block in _blocks.AsSpan(0, _blockCount))
            {
                capacity += block.Data.Length;
            }
            return capacity;
        }
    }

    /// <summary>Copies <paramref name="message"/> in as one append; an empty one adds nothing (it has no boundary of its own).</summary>
    public void Append(ReadOnlySpan<byte> message) => Append(message, []);

    /// <summary>
    /// Copies <paramref name="first"/> then <paramref name="second"/> in as one append (a JSON value and its comma,
    /// without building the stored form elsewhere first); an empty pair adds nothing.
    /// </summary>
    public void Append(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second)
    {
        if (first.IsEmpty && second.IsEmpty)
        {
            return;
        }
        Add(ref _messageStarts, ref _messageCount, End);
        Write(first, first.Length + second.Length);
        Write(second, second.Length);
    }

    /// <summary>Copies <paramref name="bytes"/> to the end; <paramref name="needed"/> (at least its length) sizes a new block.</summary>
    private void Write(ReadOnlySpan<byte> bytes, int needed)
    {
        while (!bytes.IsEmpty)
        {
            if (_blockCount == 0 || _lastBlockUsed == _blocks[_blockCount - 1].Data.Length)
            {
                AddBlock(needed);
            }
            var block = _blocks[_blockCount - 1].Data;
            var length = Math.Min(bytes.Length, block.Length - _lastBlockUsed);
            bytes[..length].CopyTo(block.AsSpan(_lastBlockUsed));
            _lastBlockUsed += length;
            End += length;
            bytes = bytes[length..];
            needed -= length;
        }
    }

    /// <summary>
    /// Forgets everything below <paramref name="position"/> (a retained start): whole blocks that end at or before it,
    /// and the append starts below it. Slices handed out earlier stay valid (their arrays live while referenced).
    /// Returns the block bytes released.
    /// </summary>
    public long DropBelow(long position)
    {
        position = Math.Min(position, End);
        if (position <= Retained)
        {
            return 0;
        }
        Retained = position;
        var blocks = 0;
        var freed = 0L;
        while (blocks < _blockCount && BlockEnd(blocks) <= position)
        {
            freed += _blocks[blocks].Data.Length;
            blocks++;
        }
        if (blocks == _blockCount)
        {
            _lastBlockUsed = 0;
        }
        RemoveFront(ref _blocks, ref _blockCount, blocks);
        var index = FindMessage(position);
        RemoveFront(ref _messageStarts, ref _messageCount, index >= 0 ? index : ~index);
        return freed;
    }

    /// <summary>
    /// Replaces everything below <paramref name="end"/> (an append start or <see cref="End"/>) by
    /// <paramref name="snapshot"/>, whose messages (<paramref name="messageLengths"/>, summing to its length) then occupy
    /// [end - snapshot length, end), and makes that the retained start (a compaction, issue 18). The snapshot gets a
    /// block of its own; blocks below <paramref name="end"/> are released, and a block straddling it keeps only its
    /// bytes from <paramref name="end"/> on (copied to a block that starts there), so bytes at and after it are
    /// unchanged. Slices handed out earlier stay valid. Returns the block bytes released.
    /// </summary>
    public long ReplacePrefix(long end, ReadOnlyMemory<byte> snapshot, IReadOnlyList<int> messageLengths)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(end, End);
        var start = end - snapshot.Length;
        ArgumentOutOfRangeException.ThrowIfLessThan(start, Retained);
        var blocks = new Block[Math.Max(4, _blockCount + 1)];
        var count = 0;
        var freed = 0L;
        blocks[count++] = new Block(start, snapshot.ToArray());
        var lastUsed = _lastBlockUsed;
        for (var i = 0; i < _blockCount; i++)
        {
            var (blockStart, data) = _blocks[i];
            var blockEnd = BlockEnd(i);
            var last = i == _blockCount - 1;
            if (blockEnd <= end)
            {
                freed += data.Length;
                if (last)
                {
                    // The whole log lay below the end: the next append opens a new block.
                    lastUsed = snapshot.Length;
                }
                continue;
            }
            if (blockStart >= end)
            {
                blocks[count++] = _blocks[i];
                continue;
            }
            // Straddles the end: keep the bytes from it on (and, for the last block, its free room) in a block of their own.
            var skip = (int)(end - blockStart);
            var copy = GC.AllocateUninitializedArray<byte>(data.Length - skip);
            data.AsSpan(skip, (int)(blockEnd - end)).CopyTo(copy);
            freed += skip;
            blocks[count++] = new Block(end, copy);
            if (last)
            {
                lastUsed = (int)(blockEnd - end);
            }
        }
        var starts = new long[Math.Max(4, messageLengths.Count + _messageCount)];
        var messages = 0;
        var position = start;
        foreach (var length in messageLengths)
        {
            starts[messages++] = position;
            position += length;
        }
        var kept = FindMessage(end);
        kept = kept >= 0 ? kept : ~kept;
        Array.Copy(_messageStarts, kept, starts, messages, _messageCount - kept);
        _blocks = blocks;
        _blockCount = count;
        _lastBlockUsed = lastUsed;
        _messageStarts = starts;
        _messageCount = messages + _messageCount - kept;
        Retained = start;
        return freed;
    }

    /// <summary>Adds slices covering [<paramref name="from"/>, <paramref name="to"/>) to <paramref name="chunks"/>.</summary>
    public void Slice(long from, long to, List<ReadOnlyMemory<byte>> chunks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(from, Retained);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(to, End);
        for (var index = FindBlock(from); from < to; index++)
        {
            var (blockStart, block) = _blocks[index];
            var stop = Math.Min(to, blockStart + block.Length);
            chunks.Add(new ReadOnlyMemory<byte>(block, (int)(from - blockStart), (int)(stop - from)));
            from = stop;
        }
    }

    /// <summary>True when an append starts at <paramref name="position"/>.</summary>
    public bool IsMessageStart(long position) => FindMessage(position) >= 0;

    /// <summary>The end of the append containing <paramref name="position"/>, or <see cref="End"/> past the last one.</summary>
    public long MessageEnd(long position)
    {
        var index = FindMessage(position);
        var next = index >= 0 ? index + 1 : ~index;
        return next < _messageCount ? _messageStarts[next] : End;
    }

    /// <summary>The last append boundary (an append's start, or <see cref="End"/>) at or before <paramref name="position"/>.</summary>
    public long BoundaryAtOrBefore(long position)
    {
        if (position >= End)
        {
            return End;
        }
        var index = FindMessage(position);
        return index >= 0 ? position : index == ~0 ? Retained : _messageStarts[~index - 1];
    }

    /// <summary>Index of the block holding <paramref name="position"/> (block starts increase strictly).</summary>
    private int FindBlock(long position) => BlockSearch.LastAtOrBefore<Block, Block>(_blocks.AsSpan(0, _blockCount), position);

    private void AddBlock(int needed)
    {
        var size = needed >= MaxBlockBytes
            ? needed
            : (int)Math.Clamp(End - Retained, Math.Max(needed, MinBlockBytes), MaxBlockBytes);
        Add(ref _blocks, ref _blockCount, new Block(End, GC.AllocateUninitializedArray<byte>(size)));
        _lastBlockUsed = 0;
    }

    /// <summary>Index of the append starting at <paramref name="position"/>, or the complement of where it would go.</summary>
    private int FindMessage(long position) => Array.BinarySearch(_messageStarts, 0, _messageCount, position);

    /// <summary>Where block <paramref name="index"/>'s written bytes end.</summary>
    private long BlockEnd(int index) =>
        _blocks[index].Start + (index == _blockCount - 1 ? _lastBlockUsed : _blocks[index].Data.Length);

    /// <summary>Removes the first <paramref name="removed"/> items, clearing the vacated slots (so dropped blocks can be
    /// collected) and shrinking an array that is mostly empty.</summary>
    private static void RemoveFront<T>(ref T[] items, ref int count, int removed)
    {
        if (removed == 0)
        {
            return;
        }
        var left = count - removed;
        if (left < items.Length / 4)
        {
            var smaller = new T[Math.Max(4, left * 2)];
            Array.Copy(items, removed, smaller, 0, left);
            items = smaller;
        }
        else
        {
            Array.Copy(items, removed, items, 0, left);
            Array.Clear(items, left, removed);
        }
        count = left;
    }

    private static void Add<T>(ref T[] items, ref int count, T item)
    {
        if (count == items.Length)
        {
            Array.Resize(ref items, Math.Max(4, count * 2));
        }
        items[count++] = item;
    }

    /// <summary>Stream position of the block's first byte, and the block.</summary>
    private readonly record struct Block(long Start, byte[] Data) : IStartOf<Block>
    {
        public static long StartOf(in Block item) => item.Start;
    }
}
