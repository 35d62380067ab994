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

    [Theory]
    [InlineData(1, 50, 100)]
    [InlineData(2, 150, 300)]
    [InlineData(3, 450, 900)]
    [InlineData(4, 500, 1000)]
    public void Delays_grow_by_the_Multiplier_per_retry_with_jitter_and_are_capped(int retry, int minMs, int maxMs)
    {
        var policy = new RetryPolicy { InitialDelay = TimeSpan.FromMilliseconds(100), Multiplier = 3, MaxDelay = TimeSpan.FromSeconds(1) };
        for (var i = 0; i < 200; i++)
        {
            Assert.InRange(policy.DelayFor(retry, null), TimeSpan.FromMilliseconds(minMs), TimeSpan.FromMilliseconds(maxMs));
        }
    }

    [Fact]
    public void A_Multiplier_of_one_keeps_every_delay_at_the_InitialDelay()
    {
        var policy = new RetryPolicy { InitialDelay = TimeSpan.FromMilliseconds(200), Multiplier = 1, MaxDelay = TimeSpan.FromSeconds(5) };
        for (var retry = 1; retry <= 20; retry++)
        {
            Assert.InRange(policy.DelayFor(retry, null), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(200));
        }
    }

    [Fact]
    public void MaxRetries_and_BaseDelay_are_the_same_settings_as_MaxAttempts_and_InitialDelay()
    {
        var policy = new RetryPolicy { MaxRetries = 5, BaseDelay = TimeSpan.FromMilliseconds(7) };

        Assert.Equal(6, policy.MaxAttempts);
        Assert.Equal(TimeSpan.FromMilliseconds(7), policy.InitialDelay);
        Assert.Equal(0, RetryPolicy.None.MaxRetries);
        Assert.Equal(2, RetryPolicy.Default.MaxRetries);
        Assert.Equal(2.0, RetryPolicy.Default.Multiplier);
    }

    public static TheoryData<RetryPolicy, string> InvalidPolicies => new()
    {
        { new RetryPolicy { MaxRetries = -1 }, "retry.maxRetries must be at least 0" },
        { new RetryPolicy { MaxAttempts = 0 }, "retry.maxRetries must be at least 0" },
        { new RetryPolicy { InitialDelay = TimeSpan.Zero }, "retry.initialDelayMs must be greater than 0" },
        { new RetryPolicy { InitialDelay = TimeSpan.FromMilliseconds(-100) }, "retry.initialDelayMs must be greater than 0" },
        { new RetryPolicy { InitialDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromMilliseconds(500) }, "retry.maxDelayMs must be at least retry.initialDelayMs" },
        { new RetryPolicy { Multiplier = 0.5 }, "retry.multiplier must be a finite number of at least 1.0" },
        { new RetryPolicy { Multiplier = double.NaN }, "retry.multiplier must be a finite number of at least 1.0" },
    };

    [Theory]
    [MemberData(nameof(InvalidPolicies))]
    public void The_client_constructor_rejects_an_invalid_policy_naming_the_option(RetryPolicy policy, string message)
    {
        var error = Assert.ThrowsAny<ArgumentException>(() => new DurableStreamClient(new DurableStreamClientOptions { Retry = policy }));

        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_client_constructor_accepts_the_defaults_and_a_valid_policy()
    {
        using var byDefault = new DurableStreamClient();
        using var valid = new DurableStreamClient(new DurableStreamClientOptions
        {
            Retry = new RetryPolicy { MaxRetries = 0, InitialDelay = TimeSpan.FromMilliseconds(100), MaxDelay = TimeSpan.FromMilliseconds(100), Multiplier = 1 },
        });

        Assert.Equal(1, valid.Options.Retry.MaxAttempts);
    }

    [Fact]
    public void Retry_After_replaces_the_computed_delay_within_MaxRetryAfter()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(700), Policy.DelayFor(1, TimeSpan.FromMilliseconds(700)));
        Assert.Equal(TimeSpan.FromSeconds(30), Policy.DelayFor(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(TimeSpan.FromSeconds(60), Policy.DelayFor(1, TimeSpan.FromMinutes(5)));
        Assert.Equal(TimeSpan.FromSeconds(2), (Policy with { MaxRetryAfter = TimeSpan.FromSeconds(2) }).DelayFor(1, TimeSpan.FromMinutes(5)));
        Assert.Equal(TimeSpan.Zero, Policy.DelayFor(1, TimeSpan.FromSeconds(-3)));
    }
}
