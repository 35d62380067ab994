using System.Globalization;
using DurableStreams.Protocol;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Core.Tests.Protocol;

public sealed class CursorPolicyTests
{
    private static readonly DateTimeOffset Epoch = new(2024, 10, 9, 0, 0, 0, TimeSpan.Zero);

    private static CursorPolicy Policy(DateTimeOffset now) => new(new CursorOptions(), new FakeTimeProvider(now));

    private static long Number(string cursor) => long.Parse(cursor, NumberStyles.None, CultureInfo.InvariantCulture);

    [Fact]
    public void Defaults_are_twenty_second_intervals_from_2024_10_09()
    {
        var options = new CursorOptions();

        Assert.Equal(TimeSpan.FromSeconds(20), options.Interval);
        Assert.Equal(Epoch, options.Epoch);
    }

    [Theory]
    [InlineData(0, "0")]
    [InlineData(19, "0")]
    [InlineData(20, "1")]
    [InlineData(59, "2")]
    [InlineData(86_400, "4320")]
    public void Without_a_client_cursor_the_cursor_is_the_current_interval(int secondsSinceEpoch, string expected)
    {
        Assert.Equal(expected, Policy(Epoch.AddSeconds(secondsSinceEpoch)).Next(null));
    }

    [Fact]
    public void Before_the_epoch_the_interval_is_zero()
    {
        Assert.Equal("0", Policy(Epoch.AddDays(-1)).Next(null));
    }

    [Fact]
    public void The_cursor_advances_with_the_clock()
    {
        var time = new FakeTimeProvider(Epoch.AddSeconds(100));
        var policy = new CursorPolicy(new CursorOptions(), time);

        Assert.Equal("5", policy.Next(null));
        time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal("6", policy.Next(null));
    }

    [Fact]
    public void Custom_interval_and_epoch_are_honoured()
    {
        var epoch = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var policy = new CursorPolicy(new CursorOptions { Interval = TimeSpan.FromSeconds(5), Epoch = epoch }, new FakeTimeProvider(epoch.AddSeconds(51)));

        Assert.Equal("10", policy.Next(null));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("4319")]
    public void A_client_cursor_behind_gets_the_current_interval(string client)
    {
        Assert.Equal("4320", Policy(Epoch.AddDays(1)).Next(client));
    }

    [Theory]
    [InlineData("4320")]
    [InlineData("4321")]
    [InlineData("1000000")]
    public void A_client_cursor_equal_or_ahead_gets_a_strictly_greater_cursor(string client)
    {
        var policy = Policy(Epoch.AddDays(1));
        var clientNumber = Number(client);

        for (var i = 0; i < 2000; i++)
        {
            var next = Number(policy.Next(client));
            Assert.InRange(next, clientNumber + 1, clientNumber + 180);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("-5")]
    [InlineData("+9999")]
    [InlineData(" 9999")]
    [InlineData("99.5")]
    [InlineData("99999999999999999999999")]
    public void A_non_numeric_client_cursor_is_ignored(string client)
    {
        Assert.Equal("4320", Policy(Epoch.AddDays(1)).Next(client));
    }

    [Fact]
    public void A_client_cursor_at_the_top_of_the_range_is_ignored_rather_than_overflowed()
    {
        var policy = Policy(Epoch.AddDays(1));

        Assert.Equal("4320", policy.Next(long.MaxValue.ToString(CultureInfo.InvariantCulture)));
        Assert.Equal("4320", policy.Next((long.MaxValue - 1).ToString(CultureInfo.InvariantCulture)));
    }
}
