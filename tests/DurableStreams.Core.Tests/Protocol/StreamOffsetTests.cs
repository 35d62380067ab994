using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class StreamOffsetTests
{
    public static TheoryData<long> Positions => [0, 1, 9, 10, 42, 99, 100, 999, 1000, 65_535, 1L << 32, 123_456_789_012, StreamOffset.MaxPosition];

    [Fact]
    public void Formats_a_position_as_a_zero_generation_and_sixteen_digits()
    {
        var text = new StreamOffset(42).ToString();

        Assert.Equal("0000000000000000_0000000000000042", text);
        Assert.Equal(StreamOffset.FormattedLength, text.Length);
        Assert.Equal(33, text.Length);
    }

    [Fact]
    public void Zero_is_the_start_of_every_stream()
    {
        Assert.Equal("0000000000000000_0000000000000000", StreamOffset.Zero.ToString());
        Assert.Equal(0, StreamOffset.Zero.Position);
    }

    [Theory]
    [MemberData(nameof(Positions))]
    public void Parse_round_trips_a_formatted_offset(long position)
    {
        var text = new StreamOffset(position).ToString();

        Assert.True(StreamOffset.TryParse(text, out var parsed));
        Assert.Equal(position, parsed.Position);
        Assert.Equal(text, parsed.ToString());
    }

    [Fact]
    public void Ordinal_string_order_equals_numeric_order()
    {
        var positions = new List<long> { 0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 9_999, 10_000, StreamOffset.MaxPosition - 1, StreamOffset.MaxPosition };
        var random = new Random(20241009);
        for (var i = 0; i < 2000; i++)
        {
            var digits = random.Next(1, 17);
            positions.Add(random.NextInt64((long)Math.Pow(10, digits - 1), Math.Min(StreamOffset.MaxPosition, (long)Math.Pow(10, digits) - 1) + 1));
        }

        for (var i = 0; i < positions.Count; i++)
        {
            var a = positions[i];
            var b = positions[(i * 7919 + 13) % positions.Count];
            var byText = Math.Sign(string.CompareOrdinal(new StreamOffset(a).ToString(), new StreamOffset(b).ToString()));
            Assert.True(Math.Sign(a.CompareTo(b)) == byText, $"{a} vs {b}: ordinal order {byText}");
            Assert.Equal(Math.Sign(a.CompareTo(b)), Math.Sign(new StreamOffset(a).CompareTo(new StreamOffset(b))));
        }
    }

    [Fact]
    public void Comparison_operators_follow_the_position()
    {
        var low = new StreamOffset(9);
        var high = new StreamOffset(10);

        Assert.True(low < high);
        Assert.True(low <= high);
        Assert.True(high > low);
        Assert.True(high >= low);
        Assert.False(high < low);
        Assert.True(low <= new StreamOffset(9));
        Assert.True(low >= new StreamOffset(9));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("now")]
    [InlineData("42")]
    [InlineData("0000000000000000_000000000000042")]
    [InlineData("0000000000000000_00000000000000042")]
    [InlineData("0000000000000000-0000000000000042")]
    [InlineData("00000000000000000000000000000042_")]
    [InlineData("0000000000000000_000000000000004a")]
    [InlineData("0000000000000000_00000000000000,2")]
    [InlineData("0000000000000000_00000000000000/2")]
    [InlineData("0000000000000000_0000000000000 42")]
    [InlineData(" 0000000000000000_000000000000042")]
    [InlineData("0000000000000000_-000000000000042")]
    [InlineData("0000000000000000_+000000000000042")]
    [InlineData("000000000000000a_0000000000000042")]
    [InlineData("0000000000000000_\u0660000000000000042")]
    public void Parse_rejects_anything_but_the_exact_format(string? text)
    {
        Assert.False(StreamOffset.TryParse(text, out var offset));
        Assert.Equal(default, offset);
    }

    [Fact]
    public void Parse_reads_the_generation_and_format_writes_it()
    {
        // Whether a generation was issued is the read rules' question (ReadRules.CheckGeneration), not the parser's.
        Assert.True(StreamOffset.TryParse("0000000000000002_0000000000000042", out var offset));
        Assert.Equal(2, offset.Generation);
        Assert.Equal(42, offset.Position);
        Assert.Equal("0000000000000002_0000000000000042", offset.ToString());
        Assert.True(StreamOffset.TryParse("9999999999999999_0000000000000000", out var largest));
        Assert.Equal(StreamOffset.MaxPosition, largest.Generation);
        Assert.Equal("0000000000000007_0000000000000001", new StreamOffset(1).InGeneration(7).ToString());
    }

    [Fact]
    public void Equality_and_order_are_by_position_whatever_the_generation()
    {
        var old = new StreamOffset(10);
        var current = new StreamOffset(10) { Generation = 3 };
        Assert.Equal(old, current);
        Assert.Equal(old.GetHashCode(), current.GetHashCode());
        Assert.True(new StreamOffset(9) { Generation = 5 } < old);
        // As strings, a later generation sorts after every offset of an earlier one: offsets a reader sees keep increasing.
        Assert.True(string.CompareOrdinal(new StreamOffset(0) { Generation = 1 }.ToString(), new StreamOffset(StreamOffset.MaxPosition).ToString()) > 0);
    }

    [Fact]
    public void Parse_accepts_the_largest_position()
    {
        Assert.True(StreamOffset.TryParse("0000000000000000_9999999999999999", out var offset));
        Assert.Equal(StreamOffset.MaxPosition, offset.Position);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(StreamOffset.MaxPosition + 1)]
    public void Format_refuses_positions_outside_sixteen_digits(long position)
    {
        var offset = new StreamOffset(position);

        Assert.False(offset.TryFormat(new char[StreamOffset.FormattedLength], out var written));
        Assert.Equal(0, written);
        Assert.Throws<InvalidOperationException>(offset.ToString);
    }

    [Fact]
    public void TryFormat_refuses_a_short_destination()
    {
        Assert.False(new StreamOffset(1).TryFormat(new char[StreamOffset.FormattedLength - 1], out var written));
        Assert.Equal(0, written);
    }
}
