using Xunit;

namespace DurableStreams.Cli.Tests;

public sealed class SizeParserTests
{
    [Theory]
    [InlineData("1048576", 1048576)]
    [InlineData("0", 0)]
    [InlineData("12B", 12)]
    [InlineData("500MB", 500_000_000)]
    [InlineData("2kb", 2000)]
    [InlineData("1GB", 1_000_000_000)]
    [InlineData("3TB", 3_000_000_000_000)]
    [InlineData("4KiB", 4096)]
    [InlineData("1MiB", 1048576)]
    [InlineData("10GiB", 10_737_418_240)]
    [InlineData("1tib", 1_099_511_627_776)]
    [InlineData(" 7MiB ", 7 * 1048576)]
    public void Accepts_whole_numbers_with_a_decimal_or_binary_unit(string text, long expected)
    {
        Assert.True(SizeParser.TryParse(text, out var bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("GiB")]
    [InlineData("1.5GiB")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("10 GiB")]
    [InlineData("10G")]
    [InlineData("10GIBS")]
    [InlineData("99999999999999999999")]
    [InlineData("9999999TiB")]
    public void Rejects_anything_else(string? text)
    {
        Assert.False(SizeParser.TryParse(text, out var bytes));
        Assert.Equal(0, bytes);
    }
}
