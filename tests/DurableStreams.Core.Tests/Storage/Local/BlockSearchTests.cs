using DurableStreams.Core.Local;
using Xunit;

namespace DurableStreams.Core.Tests.Storage.Local;

public sealed class BlockSearchTests
{
    private readonly struct Start : IStartOf<long>
    {
        public static long StartOf(in long item) => item;
    }

    [Theory]
    [InlineData(0L, 0)]
    [InlineData(9L, 0)]
    [InlineData(10L, 1)]
    [InlineData(29L, 2)]
    [InlineData(30L, 3)]
    [InlineData(1_000L, 3)]
    public void Finds_the_last_item_starting_at_or_before_a_position(long position, int expected)
    {
        long[] starts = [0, 10, 25, 30];

        Assert.Equal(expected, BlockSearch.LastAtOrBefore<long, Start>(starts, position));
    }

    [Fact]
    public void A_position_before_every_item_and_a_single_item_give_the_first()
    {
        Assert.Equal(0, BlockSearch.LastAtOrBefore<long, Start>([5L, 8L], 1));
        Assert.Equal(0, BlockSearch.LastAtOrBefore<long, Start>([5L], 100));
    }
}
