using Xunit;

namespace DurableStreams.Client.Tests;

public sealed class RetryPolicyTests
{
    private static readonly RetryPolicy Policy = new() { BaseDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromSeconds(1) };

    [Theory]
    [InlineData(1, 50, 100)]
    [InlineData(2, 100, 200)]
    [InlineData(3, 200, 400)]
    [InlineData(10, 500, 1000)]
    public void Delays_double_per_retry_with_jitter_within_half_to_full_and_are_capped(int retry, int minMs, int maxMs)
    {
        for (var i = 0; i < 200; i++)
        {
            var delay = Policy.DelayFor(retry, null);
            Assert.InRange(delay, TimeSpan.FromMilliseconds(minMs), TimeSpan.FromMilliseconds(maxMs));
        }
    }

    [Fact]
    public void Retry_After_replaces_the_computed_delay_within_MaxDelay()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(700), Policy.DelayFor(1, TimeSpan.FromMilliseconds(700)));
        Assert.Equal(TimeSpan.FromSeconds(1), Policy.DelayFor(1, TimeSpan.FromMinutes(5)));
        Assert.Equal(TimeSpan.Zero, Policy.DelayFor(1, TimeSpan.FromSeconds(-3)));
    }
}
