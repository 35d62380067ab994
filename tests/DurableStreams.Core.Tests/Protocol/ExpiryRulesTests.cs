using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class ExpiryRulesTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("1", 1L)]
    [InlineData("60", 60L)]
    [InlineData("3600", 3600L)]
    [InlineData("10000000000", ExpiryRules.MaxTtlSeconds)]
    public void Ttl_accepts_plain_decimal_integers(string text, long expected)
    {
        Assert.True(ExpiryRules.TryParseTtl(text, out var seconds));
        Assert.Equal(expected, seconds);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("00")]
    [InlineData("00060")]
    [InlineData("03600")]
    [InlineData("+60")]
    [InlineData("-1")]
    [InlineData("60.5")]
    [InlineData("3600.0")]
    [InlineData("1e3")]
    [InlineData("3.6e3")]
    [InlineData("abc")]
    [InlineData("60 ")]
    [InlineData(" 60")]
    [InlineData("6 0")]
    [InlineData("0x10")]
    [InlineData("10000000001")]
    [InlineData("99999999999")]
    [InlineData("9223372036854775807")]
    [InlineData("99999999999999999999999999")]
    [InlineData("\u0661\u0662")]
    public void Ttl_rejects_anything_but_a_plain_decimal_integer_in_range(string? text)
    {
        Assert.False(ExpiryRules.TryParseTtl(text, out _));
    }

    [Theory]
    [InlineData("2025-01-01T00:00:00Z", "2025-01-01T00:00:00+00:00")]
    [InlineData("2025-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00")]
    [InlineData("2025-01-01T02:00:00+02:00", "2025-01-01T00:00:00+00:00")]
    [InlineData("2024-12-31T19:00:00-05:00", "2025-01-01T00:00:00+00:00")]
    [InlineData("2025-01-01T00:00:00.5Z", "2025-01-01T00:00:00.5+00:00")]
    [InlineData("2025-01-01T00:00:00.123Z", "2025-01-01T00:00:00.123+00:00")]
    [InlineData("2025-01-01T00:00:00.1234567Z", "2025-01-01T00:00:00.1234567+00:00")]
    [InlineData("2025-01-01T00:00:00.123456789Z", "2025-01-01T00:00:00.1234568+00:00")]
    [InlineData("2025-01-01t00:00:00z", "2025-01-01T00:00:00+00:00")]
    public void Expires_at_accepts_rfc3339_with_a_zone(string text, string expected)
    {
        Assert.True(ExpiryRules.TryParseExpiresAt(text, out var at));
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), at);
    }

    [Fact]
    public void Expires_at_keeps_the_instant_of_a_numeric_offset()
    {
        Assert.True(ExpiryRules.TryParseExpiresAt("2025-06-01T12:00:00+02:00", out var at));

        Assert.Equal(new DateTimeOffset(2025, 6, 1, 10, 0, 0, TimeSpan.Zero).UtcTicks, at.UtcTicks);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("not-a-timestamp")]
    [InlineData("2025-01-01")]
    [InlineData("2025-01-01T00:00:00")]
    [InlineData("2025-01-01T00:00:00.123")]
    [InlineData("2025-01-01 00:00:00Z")]
    [InlineData("2025-01-01T00:00Z")]
    [InlineData("2025-01-01T00:00:00+0000")]
    [InlineData("2025-01-01T00:00:00 Z")]
    [InlineData(" 2025-01-01T00:00:00Z")]
    [InlineData("2025-13-01T00:00:00Z")]
    [InlineData("2025-02-30T00:00:00Z")]
    [InlineData("2025-01-01T25:00:00Z")]
    [InlineData("Wed, 01 Jan 2025 00:00:00 GMT")]
    [InlineData("1735689600")]
    public void Expires_at_rejects_anything_but_rfc3339_with_a_zone(string? text)
    {
        Assert.False(ExpiryRules.TryParseExpiresAt(text, out _));
    }

    [Fact]
    public void Format_writes_utc_with_milliseconds()
    {
        var at = new DateTimeOffset(2025, 1, 1, 2, 3, 4, 567, TimeSpan.FromHours(2));

        Assert.Equal("2025-01-01T00:03:04.567Z", ExpiryRules.Format(at));
    }

    [Fact]
    public void Format_output_parses_back_to_the_same_instant()
    {
        var at = new DateTimeOffset(2030, 7, 15, 8, 9, 10, 11, TimeSpan.Zero);

        Assert.True(ExpiryRules.TryParseExpiresAt(ExpiryRules.Format(at), out var parsed));
        Assert.Equal(at, parsed);
    }
}
