using DurableStreams.Core.Memory;
using Xunit;

namespace DurableStreams.Core.Tests.Storage.Memory;

/// <summary>The memory store's packed byte log: boundaries, slices across blocks, and how much it allocates.</summary>
public sealed class MessageLogTests
{
    [Fact]
    public void Boundaries_are_the_append_starts_and_the_end()
    {
        // A fork's log starts at its fork position; the empty append has no boundary of its own.
        var log = new MessageLog(1000);
        log.Append(new byte[5]);
        log.Append([]);
        log.Append(new byte[70_000]);
        log.Append(new byte[3]);

        Assert.Equal(71_008, log.End);
        Assert.True(log.IsMessageStart(1000));
        Assert.True(log.IsMessageStart(1005));
        Assert.True(log.IsMessageStart(71_005));
        Assert.False(log.IsMessageStart(1001));
        Assert.False(log.IsMessageStart(71_008));
        Assert.Equal(1005, log.MessageEnd(1000));
        Assert.Equal(71_005, log.MessageEnd(1005));
        Assert.Equal(71_005, log.MessageEnd(50_000));
        Assert.Equal(71_008, log.MessageEnd(71_007));
        Assert.Equal(1000, log.BoundaryAtOrBefore(1004));
        Assert.Equal(1005, log.BoundaryAtOrBefore(1005));
        Assert.Equal(1005, log.BoundaryAtOrBefore(71_004));
        Assert.Equal(71_005, log.BoundaryAtOrBefore(71_007));
        Assert.Equal(71_008, log.BoundaryAtOrBefore(90_000));
    }

    [Fact]
    public void A_two_part_append_is_one_message_even_across_blocks()
    {
        var log = new MessageLog(0);
        log.Append(new byte[60]);
        log.Append("{\"a\":1}"u8, ","u8);
        log.Append([], []);

        Assert.Equal(68, log.End);
        Assert.True(log.IsMessageStart(60));
        Assert.False(log.IsMessageStart(67));
        Assert.Equal(68, log.MessageEnd(60));
        var chunks = new List<ReadOnlyMemory<byte>>();
        log.Slice(60, 68, chunks);
        Assert.Equal("{\"a\":1},"u8.ToArray(), chunks.SelectMany(c => c.ToArray()).ToArray());
    }

    [Fact]
    public void Slices_cover_exactly_the_range_across_blocks()
    {
        var log = new MessageLog(0);
        var expected = new List<byte>();
        var random = new Random(7);
        foreach (var size in new[] { 100, 1, 64, 3000, 65_536, 10, 200_000, 7 })
        {
            var bytes = new byte[size];
            random.NextBytes(bytes);
            log.Append(bytes);
            expected.AddRange(bytes);
        }

        foreach (var (from, to) in new[] { (0, expected.Count), (99, 101), (150, 70_000), (68_000, 268_000), (expected.Count - 1, expected.Count), (5, 5) })
        {
            var chunks = new List<ReadOnlyMemory<byte>>();
            log.Slice(from, to, chunks);
            Assert.Equal(expected.Skip(from).Take(to - from), chunks.SelectMany(c => c.ToArray()));
            Assert.DoesNotContain(chunks, c => c.IsEmpty);
        }
    }

    [Theory]
    [InlineData(1, 100)]
    [InlineData(3, 100)]
    [InlineData(1_000, 100)]
    [InlineData(100_000, 100)]
    [InlineData(50, 3_000)]
    public void Blocks_grow_with_the_stream_so_little_is_allocated_but_unused(int appends, int size)
    {
        var log = new MessageLog(0);
        for (var i = 0; i < appends; i++)
        {
            log.Append(new byte[size]);
        }

        // A new block is as large as everything before it (64 B to 64 KiB), so the unused tail of the last block is at
        // most the stream's own size, and never a whole block.
        long stored = appends * size;
        Assert.InRange(log.Capacity, stored, Math.Min((2 * stored) + 64, stored + MessageLog.MaxBlockBytes));
    }

    [Fact]
    public void The_part_of_a_large_append_that_no_block_holds_gets_a_block_of_exactly_its_size()
    {
        var log = new MessageLog(0);
        log.Append(new byte[100]);
        log.Append(new byte[1024 * 1024]);

        Assert.Equal(100 + (1024 * 1024), log.Capacity);
    }

    [Fact]
    public void DropBelow_releases_whole_blocks_below_the_position_and_keeps_the_rest_readable()
    {
        var log = new MessageLog(0);
        var expected = new List<byte>();
        var random = new Random(11);
        for (var i = 0; i < 40; i++)
        {
            var bytes = new byte[10_000];
            random.NextBytes(bytes);
            log.Append(bytes);
            expected.AddRange(bytes);
        }
        var before = log.Capacity;

        // 250,000 lies inside a block: the blocks wholly below it go, the one that straddles it stays.
        var freed = log.DropBelow(250_000);

        Assert.Equal(250_000, log.Retained);
        Assert.True(freed > 250_000 - MessageLog.MaxBlockBytes, $"freed {freed}");
        Assert.Equal(before - freed, log.Capacity);
        Assert.True(log.Capacity < 400_000 - 250_000 + MessageLog.MaxBlockBytes, $"capacity {log.Capacity}");
        var chunks = new List<ReadOnlyMemory<byte>>();
        log.Slice(250_000, 400_000, chunks);
        Assert.Equal(expected.Skip(250_000), chunks.SelectMany(c => c.ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.Slice(249_999, 250_000, []));
        // Append starts below the position are gone, the rest kept.
        Assert.False(log.IsMessageStart(240_000));
        Assert.True(log.IsMessageStart(250_000));
        Assert.Equal(260_000, log.MessageEnd(250_000));
        Assert.Equal(250_000, log.BoundaryAtOrBefore(255_000));
        // Never backwards.
        Assert.Equal(0, log.DropBelow(100));
        Assert.Equal(250_000, log.Retained);
    }

    [Fact]
    public void DropBelow_the_end_releases_every_block_and_appends_continue_at_the_same_positions()
    {
        var log = new MessageLog(100);
        log.Append(new byte[5]);
        log.Append(new byte[70_000]);
        log.Append(new byte[3]);

        var freed = log.DropBelow(1_000_000);

        Assert.Equal(70_108, log.Retained);
        Assert.Equal(0, log.Capacity);
        Assert.True(freed >= 70_008);
        Assert.Equal(70_108, log.BoundaryAtOrBefore(70_108));
        log.Append([1, 2, 3]);
        Assert.Equal(70_111, log.End);
        Assert.True(log.IsMessageStart(70_108));
        var chunks = new List<ReadOnlyMemory<byte>>();
        log.Slice(70_108, 70_111, chunks);
        Assert.Equal(new byte[] { 1, 2, 3 }, chunks.SelectMany(c => c.ToArray()));
    }
}
