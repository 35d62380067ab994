using Xunit;

namespace DurableStreams.Cli.Tests;

public sealed class DurationParserTests
{
    public static TheoryData<string, TimeSpan> ValidDurations => new()
    {
        { "500ms", TimeSpan.FromMilliseconds(500) },
        { "30s", TimeSpan.FromSeconds(30) },
        { "2m", TimeSpan.FromMinutes(2) },
        { "1h", TimeSpan.FromHours(1) },
        { "30", TimeSpan.FromSeconds(30) },
        { "0", TimeSpan.Zero },
        { "0ms", TimeSpan.Zero },
        { "1500ms", TimeSpan.FromMilliseconds(1500) },
        { "10MS", TimeSpan.FromMilliseconds(10) },
        { "5S", TimeSpan.FromSeconds(5) },
        { " 45s ", TimeSpan.FromSeconds(45) },
        { "007s", TimeSpan.FromSeconds(7) },
        { "7d", TimeSpan.FromDays(7) },
        { "1D", TimeSpan.FromDays(1) },
    };

    [Theory]
    [MemberData(nameof(ValidDurations))]
    public void Accepts_whole_numbers_with_an_optional_unit(string text, TimeSpan expected)
    {
        Assert.True(DurationParser.TryParse(text, out var duration));
        Assert.Equal(expected, duration);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("s")]
    [InlineData("ms")]
    [InlineData("abc")]
    [InlineData("5x")]
    [InlineData("5sec")]
    [InlineData("1.5s")]
    [InlineData("-1s")]
    [InlineData("+1s")]
    [InlineData("30 s")]
    [InlineData("1h30m")]
    [InlineData("00:00:30")]
    [InlineData("99999999999999999999")]
    [InlineData("9999999999999999h")]
    [InlineData("99999999999999d")]
    [InlineData("7days")]
    public void Rejects_anything_else(string? text)
    {
        Assert.False(DurationParser.TryParse(text, out var duration));
        Assert.Equal(TimeSpan.Zero, duration);
    }

    [Theory]
    [InlineData(500, "500ms")]
    [InlineData(30_000, "30s")]
    [InlineData(60_000, "1m")]
    [InlineData(90_000, "90s")]
    [InlineData(7_200_000, "2h")]
    [InlineData(0, "0s")]
    public void Formats_in_the_largest_exact_unit(int milliseconds, string expected)
    {
        var duration = TimeSpan.FromMilliseconds(milliseconds);

        var text = DurationParser.Format(duration);

        Assert.Equal(expected, text);
        Assert.True(DurationParser.TryParse(text, out var roundTripped));
        Assert.Equal(duration, roundTripped);
    }
}
