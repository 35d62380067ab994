using DurableStreams.Core.Local;

namespace DurableStreams.Storage.Files;

/// <summary>
/// A stream's committed frames in memory, packed: about 8 bytes and a bit per frame (a 4-byte start relative to its
/// block, the 4-byte CRC, the boundary bit) instead of a 24-byte <see cref="Frame"/> record in a list that doubles.
/// A stream of tiny JSON messages has one frame per message, so this is what bounds its index memory (5 M messages:
/// about 40 MB rather than 200). Frames are contiguous (each starts where the previous one ends), so lengths are not
/// stored. Blocks of <see cref="BlockSize"/> frames keep every array small (no large-object heap, no copy of the whole
/// index when it grows); only the last block grows, from a few entries, so a small stream stays small.
/// Guarded by the stream's gate, as the list it replaces was. The LMDB <c>frames</c> records are unchanged.
/// Retention drops a prefix (<see cref="DropBelow"/>): indexes then count from the first frame kept, and a block is
/// released once all its frames are gone.
/// </summary>
internal sealed class FrameIndex
{
    private const int BlockShift = 12;
    private const int BlockSize = 1 << BlockShift;
    private const int BlockMask = BlockSize - 1;

    private Block[] _blocks = [];
    private int _blockCount;

    /// <summary>Frames held in the blocks, including the <see cref="_skip"/> dropped ones at the front of the first.</summary>
    private int _total;

    /// <summary>Frames dropped by retention from the front of the first block (less than <see cref="BlockSize"/>).</summary>
    private int _skip;

    /// <summary>Number of frames.</summary>
    public int Count => _total - _skip;

    /// <summary>Frame entries allocated across the blocks, used or not (what the index costs in memory, ~8 B each).</summary>
    public int AllocatedEntries
    {
        get
        {
            var entries = 0;
            for (var b = 0; b < _blockCount; b++)
            {
                entries += _blocks[b].Offsets.Length;
            }
            return entries;
        }
    }

    /// <summary>End of the last frame (meaningless while <see cref="Count"/> is 0).</summary>
    public long End { get; private set; }

    /// <summary>The frame at <paramref name="index"/>, rebuilt from the packed entries.</summary>
    public Frame this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count);
            index += _skip;
            var block = _blocks[index >> BlockShift];
            var i = index & BlockMask;
            var start = block.Start + block.Offsets[i];
            var end = index + 1 < _total ? StartOf(index + 1) : End;
            return new Frame(start, (int)(end - start), block.Crcs[i], (block.Boundaries[i >> 6] & (1UL << (i & 63))) != 0);
        }
    }

    /// <summary>Adds the next frame; it must start where the last one ends.</summary>
    /// <exception cref="InvalidDataException">The frame leaves a gap or overlaps.</exception>
    public void Add(Frame frame)
    {
        if (Count > 0 && frame.Start != End)
        {
            throw new InvalidDataException($"Frame at {frame.Start} does not follow the frame index's end {End}.");
        }
        var i = _total & BlockMask;
        if (i == 0)
        {
            if (_blockCount == _blocks.Length)
            {
                Array.Resize(ref _blocks, Math.Max(4, _blockCount * 2));
            }
            // A stream that filled a block is a large one: its next blocks start full size (no regrowth). The capacity is
            // chosen before the count moves: a small stream's first block starts at 4 frames, not 4,096 (~33 KB each).
            var capacity = _blockCount == 0 ? 4 : BlockSize;
            _blocks[_blockCount] = new Block(frame.Start, capacity);
            _blockCount++;
        }
        var block = _blocks[_blockCount - 1];
        block.EnsureCapacity(i + 1);
        block.Offsets[i] = (int)(frame.Start - block.Start);
        block.Crcs[i] = frame.Crc;
        if (frame.Boundary)
        {
            block.Boundaries[i >> 6] |= 1UL << (i & 63);
        }
        _total++;
        End = frame.End;
    }

    /// <summary>Index of the frame containing <paramref name="position"/>, or -1.</summary>
    public int Find(long position)
    {
        if (Count == 0 || position >= End || position < StartOf(_skip))
        {
            return -1;
        }
        // The last block starting at or before the position, then the last frame in it starting at or before it.
        var lo = BlockSearch.LastAtOrBefore<Block, Block>(_blocks.AsSpan(0, _blockCount), position);
        var block = _blocks[lo];
        var count = lo == _blockCount - 1 ? ((_total - 1) & BlockMask) + 1 : BlockSize;
        var first = BlockSearch.LastAtOrBefore<int, RelativeStart>(block.Offsets.AsSpan(0, count), position - block.Start);
        return (lo << BlockShift) + first - _skip;
    }

    /// <summary>
    /// Drops the frames that end at or below <paramref name="start"/> (retention moved the stream's start there); a
    /// frame containing it is kept. Returns how many were dropped.
    /// </summary>
    public int DropBelow(long start)
    {
        var drop = Count == 0 ? 0 : start >= End ? Count : Find(start) is var found and >= 0 ? found : 0;
        if (drop == Count)
        {
            // Nothing left: release every block (the end stays, where the next frame must start).
            _blocks = [];
            _blockCount = 0;
            _total = 0;
            _skip = 0;
            return drop;
        }
        _skip += drop;
        var whole = _skip >> BlockShift;
        if (whole > 0)
        {
            Array.Copy(_blocks, whole, _blocks, 0, _blockCount - whole);
            Array.Clear(_blocks, _blockCount - whole, whole);
            _blockCount -= whole;
            _skip -= whole << BlockShift;
            _total -= whole << BlockShift;
        }
        return drop;
    }

    /// <summary>Copies <paramref name="count"/> frames from <paramref name="index"/> into <paramref name="destination"/>.</summary>
    public void CopyTo(int index, Span<Frame> destination, int count)
    {
        for (var k = 0; k < count; k++)
        {
            destination[k] = this[index + k];
        }
    }

    private long StartOf(int index)
    {
        var block = _blocks[index >> BlockShift];
        return block.Start + block.Offsets[index & BlockMask];
    }

    /// <summary>Up to <see cref="BlockSize"/> frames: their starts relative to the block's first, CRCs and boundary bits.</summary>
    private sealed class Block(long start, int capacity) : IStartOf<Block>
    {
        public long Start { get; } = start;
        public int[] Offsets = new int[capacity];
        public uint[] Crcs = new uint[capacity];
        public ulong[] Boundaries = new ulong[(capacity + 63) >> 6];

        public void EnsureCapacity(int needed)
        {
            if (needed <= Offsets.Length)
            {
                return;
            }
            var size = Math.Min(BlockSize, Offsets.Length * 2);
            Array.Resize(ref Offsets, size);
            Array.Resize(ref Crcs, size);
            Array.Resize(ref Boundaries, (size + 63) >> 6);
        }

        public static long StartOf(in Block item) => item.Start;
    }

    /// <summary>A frame's start relative to its block's first, as <see cref="Block.Offsets"/> holds it.</summary>
    private readonly struct RelativeStart : IStartOf<int>
    {
        public static long StartOf(in int item) => item;
    }
}
