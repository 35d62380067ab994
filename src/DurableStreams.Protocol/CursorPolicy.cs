using System.Globalization;

namespace DurableStreams.Protocol;

/// <summary>Cursor settings (§10.1): fixed intervals counted from an epoch.</summary>
public sealed class CursorOptions
{
    /// <summary>Interval length; default 20 s as in the protocol.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Epoch the intervals count from; default 2024-10-09T00:00:00Z as in the protocol.</summary>
    public DateTimeOffset Epoch { get; set; } = new(2024, 10, 9, 0, 0, 0, TimeSpan.Zero);
}

/// <summary>
/// Computes <c>Stream-Cursor</c> values: the current interval number, or — when the client's cursor is not behind —
/// the client's cursor plus 1–3600 seconds of random jitter in whole intervals, so cursors never repeat or go back.
/// </summary>
public sealed class CursorPolicy(CursorOptions options, TimeProvider timeProvider)
{
    private const int MaxJitterSeconds = 3600;

    /// <summary>
    /// The cursor to return for a request that echoed <paramref name="clientCursor"/> (may be null). Absurdly large
    /// client cursors are ignored rather than overflowed.
    /// </summary>
    public string Next(string? clientCursor)
    {
        var elapsed = timeProvider.GetUtcNow() - options.Epoch;
        var interval = Math.Max(0L, elapsed.Ticks / options.Interval.Ticks);
        if (clientCursor is not null
            && long.TryParse(clientCursor, NumberStyles.None, CultureInfo.InvariantCulture, out var client)
            && client >= interval
            && client < long.MaxValue / 2)
        {
            var jitterSeconds = Random.Shared.Next(1, MaxJitterSeconds + 1);
            var jitterIntervals = Math.Max(1L, (long)Math.Ceiling(jitterSeconds / options.Interval.TotalSeconds));
            interval = client + jitterIntervals;
        }
        return interval.ToString(CultureInfo.InvariantCulture);
    }
}
