using Xunit;

namespace DurableStreams.Subscriptions.Tests;

public sealed class SubscriptionConfigTests
{
    private static SubscriptionConfig Webhook(IReadOnlyList<string>? streams = null, string? description = "d", int lease = 30_000, string url = "https://hooks.example/a") => new()
    {
        Type = SubscriptionType.Webhook,
        Pattern = "events/*",
        Streams = streams ?? ["b", "a"],
        WebhookUrl = url,
        LeaseTtlMs = lease,
        Description = description,
    };

    [Fact]
    public void The_hash_ignores_stream_order_duplicates_and_surrounding_slashes()
    {
        var a = Webhook(["b", "a"]).ComputeHash();
        var b = Webhook(["/a/", "b", "a"]).ComputeHash();

        Assert.Equal(a, b);
        Assert.Matches("^[0-9a-f]{64}$", a);
    }

    [Fact]
    public void The_hash_covers_delivery_lease_description_and_streams()
    {
        var baseline = Webhook().ComputeHash();

        Assert.NotEqual(baseline, Webhook(description: "other").ComputeHash());
        Assert.NotEqual(baseline, Webhook(description: null).ComputeHash());
        Assert.NotEqual(baseline, Webhook(lease: 1_000).ComputeHash());
        Assert.NotEqual(baseline, Webhook(url: "https://hooks.example/b").ComputeHash());
        Assert.NotEqual(baseline, Webhook(["a"]).ComputeHash());
    }

    [Fact]
    public void A_pull_wake_and_a_webhook_with_otherwise_equal_fields_hash_differently()
    {
        var pull = new SubscriptionConfig { Type = SubscriptionType.PullWake, Pattern = "events/*", WakeStream = "wake/pool" };
        var hook = new SubscriptionConfig { Type = SubscriptionType.Webhook, Pattern = "events/*", WebhookUrl = "wake/pool" };

        Assert.NotEqual(pull.ComputeHash(), hook.ComputeHash());
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 4)]
    [InlineData(6, 32)]
    [InlineData(7, 60)]
    [InlineData(50, 60)]
    public void Retry_base_delays_double_from_one_second_up_to_sixty(int attempt, int seconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(seconds), RetrySchedule.BaseDelay(attempt));
    }

    [Fact]
    public void Retry_jitter_stays_within_twenty_percent()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(800), RetrySchedule.Delay(1, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(1000), RetrySchedule.Delay(1, 0.5));
        Assert.True(RetrySchedule.Delay(1, 0.999999) < TimeSpan.FromMilliseconds(1200));
        Assert.Equal(TimeSpan.FromSeconds(48), RetrySchedule.Delay(10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => RetrySchedule.Delay(1, 1));
    }
}
