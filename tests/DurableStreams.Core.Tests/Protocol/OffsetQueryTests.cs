using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class OffsetQueryTests
{
    [Fact]
    public void Minus_one_means_the_beginning()
    {
        Assert.True(OffsetQuery.TryParse("-1", out var query));
        Assert.Equal(OffsetKind.Beginning, query.Kind);
        Assert.Equal(StreamOffset.Zero, query.Offset);
    }

    [Fact]
    public void Now_means_the_tail()
    {
        Assert.True(OffsetQuery.TryParse("now", out var query));
        Assert.Equal(OffsetKind.Now, query.Kind);
    }

    [Fact]
    public void A_formatted_offset_means_that_position()
    {
        Assert.True(OffsetQuery.TryParse("0000000000000000_0000000000000007", out var query));
        Assert.Equal(OffsetQuery.At(new StreamOffset(7)), query);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("NOW")]
    [InlineData("Now")]
    [InlineData("-2")]
    [InlineData("-1 ")]
    [InlineData("0")]
    [InlineData("abc")]
    public void Anything_else_is_invalid(string? text)
    {
        Assert.False(OffsetQuery.TryParse(text, out var query));
        Assert.Equal(default, query);
    }
}
