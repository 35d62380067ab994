namespace DurableStreams.Subscriptions;

/// <summary>Webhook retry delays (§7.1): exponential from 1 second, capped at 60 seconds, with ±20% jitter.</summary>
public static class RetrySchedule
{
    /// <summary>The first retry's base delay.</summary>
    public static readonly TimeSpan Initial = TimeSpan.FromSeconds(1);

    /// <summary>The largest base delay.</summary>
    public static readonly TimeSpan Maximum = TimeSpan.FromSeconds(60);

    /// <summary>Jitter as a fraction of the base delay.</summary>
    public const double Jitter = 0.2;

    /// <summary>The base delay before retry number <paramref name="attempt"/> (1 = the first retry), without jitter.</summary>
    public static TimeSpan BaseDelay(int attempt)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var exponent = Math.Min(attempt - 1, 16);
        var ticks = Math.Min(Initial.Ticks << exponent, Maximum.Ticks);
        return TimeSpan.FromTicks(ticks);
    }

    /// <summary>
    /// The delay before retry <paramref name="attempt"/>: the base delay scaled by a factor in [0.8, 1.2) chosen by
    /// <paramref name="unitRandom"/> (a value in [0, 1)).
    /// </summary>
    public static TimeSpan Delay(int attempt, double unitRandom)
    {
        if (unitRandom is < 0 or >= 1 || double.IsNaN(unitRandom))
        {
            throw new ArgumentOutOfRangeException(nameof(unitRandom), unitRandom, "Expected a value in [0, 1).");
        }
        var factor = 1 - Jitter + (2 * Jitter * unitRandom);
        return TimeSpan.FromTicks((long)(BaseDelay(attempt).Ticks * factor));
    }
}
