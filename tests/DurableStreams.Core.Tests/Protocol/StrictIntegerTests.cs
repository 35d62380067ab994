using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class StrictIntegerTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("7", 7L)]
    [InlineData("1234567890", 1_234_567_890L)]
    [InlineData("9007199254740991", StrictInteger.MaxSafeInteger)]
    public void Accepts_non_negative_integers_up_to_two_to_the_53_minus_one(string text, long expected)
    {
        Assert.True(StrictInteger.TryParse(text, allowLeadingZeros: false, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("1.5")]
    [InlineData("1e3")]
    [InlineData("abc")]
    [InlineData(" 1")]
    [InlineData("1 ")]
    [InlineData("9007199254740992")]
    [InlineData("99999999999999999")]
    [InlineData("18446744073709551616")]
    public void Rejects_signs_fractions_words_and_values_past_the_safe_range(string? text)
    {
        Assert.False(StrictInteger.TryParse(text, allowLeadingZeros: true, out _));
        Assert.False(StrictInteger.TryParse(text, allowLeadingZeros: false, out _));
    }

    [Theory]
    [InlineData("05", 5L)]
    [InlineData("00", 0L)]
    [InlineData("0000000000000042", 42L)]
    public void Leading_zeros_are_accepted_only_when_allowed(string text, long expected)
    {
        Assert.False(StrictInteger.TryParse(text, allowLeadingZeros: false, out _));
        Assert.True(StrictInteger.TryParse(text, allowLeadingZeros: true, out var value));
        Assert.Equal(expected, value);
    }
}
