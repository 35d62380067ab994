using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>The packed frame index: lookups before and after retention drops a prefix, across its 4,096-frame blocks.</summary>
public sealed class FrameIndexTests
{
    /// <summary>Frames of 1 to 7 bytes, a boundary every third frame.</summary>
    private static (FrameIndex Index, List<Frame> Frames) Build(int count, long start = 100)
    {
        var index = new FrameIndex();
        var frames = new List<Frame>();
        for (var i = 0; i < count; i++)
        {
            var frame = new Frame(start, 1 + (i % 7), (uint)i * 2654435761u, i % 3 == 2);
            index.Add(frame);
            frames.Add(frame);
            start = frame.End;
        }
        return (index, frames);
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(5, 8)]
    [InlineData(4_096, 4_096)]
    [InlineData(4_097, 8_192)]
    public void A_small_stream_allocates_a_small_index_and_a_large_one_full_blocks(int frames, int allocated)
    {
        var (index, _) = Build(frames);

        Assert.Equal(allocated, index.AllocatedEntries);
    }

    [Theory]
    [InlineData(10, 0)]
    [InlineData(10, 4)]
    [InlineData(10_000, 3)]
    [InlineData(10_000, 4_096)]
    [InlineData(10_000, 8_191)]
    [InlineData(10_000, 9_999)]
    public void Dropping_a_prefix_keeps_every_later_frame_findable_and_appendable(int count, int drop)
    {
        var (index, frames) = Build(count);

        Assert.Equal(drop, index.DropBelow(frames[drop].Start));

        Assert.Equal(count - drop, index.Count);
        Assert.Equal(-1, index.Find(frames[drop].Start - 1));
        for (var i = drop; i < count; i += 1 + (i % 97))
        {
            Assert.Equal(frames[i], index[i - drop]);
            Assert.Equal(i - drop, index.Find(frames[i].Start));
            Assert.Equal(i - drop, index.Find(frames[i].End - 1));
        }
        var next = new Frame(frames[^1].End, 5, 42, true);
        index.Add(next);
        Assert.Equal(next, index[index.Count - 1]);
        Assert.Equal(index.Count - 1, index.Find(next.Start + 4));
    }

    [Fact]
    public void Dropping_inside_a_frame_keeps_that_frame_and_dropping_past_the_end_empties_the_index()
    {
        var (index, frames) = Build(5_000);

        Assert.Equal(4_100, index.DropBelow(frames[4_100].Start + 1));
        Assert.Equal(frames[4_100], index[0]);
        Assert.Equal(0, index.DropBelow(frames[4_100].Start));

        Assert.Equal(900, index.DropBelow(frames[^1].End));
        Assert.Equal(0, index.Count);
        Assert.Equal(-1, index.Find(frames[^1].End - 1));
        var next = new Frame(frames[^1].End, 3, 7, true);
        index.Add(next);
        Assert.Equal(0, index.Find(next.Start));
        Assert.Equal(next, index[0]);
    }
}
