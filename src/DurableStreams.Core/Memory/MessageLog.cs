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
    public void Append(ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty)
        {
            return;
        }
        Add(ref _messageStarts, ref _messageCount, End);
        while (!message.IsEmpty)
        {
            if (_blockCount == 0 || _lastBlockUsed == _blocks[_blockCount - 1].Data.Length)
            {
                AddBlock(message.Length);
            }
            var block = _blocks[_blockCount - 1].Data;
            var length = Math.Min(message.Length, block.Length - _lastBlockUsed);
            message[..length].CopyTo(block.AsSpan(_lastBlockUsed));
            _lastBlockUsed += length;
            End += length;
            message = message[length..];
        }
    }

    /// <summary>Adds slices covering [<paramref name="from"/>, <paramref name="to"/>) to <paramref name="chunks"/>.</summary>
    public void Slice(long from, long to, List<ReadOnlyMemory<byte>> chunks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(from, Start);
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
        return index >= 0 ? position : index == ~0 ? Start : _messageStarts[~index - 1];
    }

    /// <summary>Index of the block holding <paramref name="position"/> (block starts increase strictly).</summary>
    private int FindBlock(long position) => BlockSearch.LastAtOrBefore<Block, Block>(_blocks.AsSpan(0, _blockCount), position);

    private void AddBlock(int needed)
    {
        var size = needed >= MaxBlockBytes
            ? needed
            : (int)Math.Clamp(End - Start, Math.Max(needed, MinBlockBytes), MaxBlockBytes);
        Add(ref _blocks, ref _blockCount, new Block(End, GC.AllocateUninitializedArray<byte>(size)));
        _lastBlockUsed = 0;
    }

    /// <summary>Index of the append starting at <paramref name="position"/>, or the complement of where it would go.</summary>
    private int FindMessage(long position) => Array.BinarySearch(_messageStarts, 0, _messageCount, position);

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
