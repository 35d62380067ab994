namespace DurableStreams.Core.Retention;

/// <summary>
/// The retention rules every store shares: where a stream's retained start may move to, and what a fork's effective
/// start is. Stores evaluate them under their per-stream lock and supply what only they know.
/// </summary>
public static class RetentionRules
{
    /// <summary>
    /// The retained start <paramref name="policy"/> allows at <paramref name="now"/>: the furthest boundary such that
    /// everything below it is older than <see cref="RetentionPolicy.MaxAge"/> or lies before the last
    /// <see cref="RetentionPolicy.MaxBytes"/> bytes. Never below <paramref name="currentStart"/>, never past
    /// <paramref name="tail"/>, always a boundary of <paramref name="boundaries"/> (JSON messages are never split).
    /// The <paramref name="times"/> are the stream's append-time samples; null when the store records none (then age
    /// drops nothing).
    /// </summary>
    public static long PlanStart<TBoundaries>(RetentionPolicy policy, DateTimeOffset now, long currentStart, long tail, AppendTimes? times, TBoundaries boundaries)
        where TBoundaries : IStreamBoundaries
    {
        ArgumentNullException.ThrowIfNull(policy);
        var cut = currentStart;
        if (policy.MaxBytes is { } maxBytes && tail - maxBytes > cut)
        {
            cut = tail - maxBytes;
        }
        if (policy.MaxAge is { } maxAge && times is not null)
        {
            cut = Math.Max(cut, times.DroppableBelow(now - maxAge, tail));
        }
        if (cut <= currentStart)
        {
            return currentStart;
        }
        if (cut >= tail)
        {
            return tail;
        }
        // Round up: a size bound is a ceiling, and a start inside a message would split it.
        return boundaries.IsBoundary(cut) ? cut : Math.Min(tail, boundaries.NextBoundary(cut));
    }

    /// <summary>
    /// A fork's effective retained start: its own, or, below its fork position, its source's (a source's retention is
    /// never held back by forks; a fork answers 410 for an inherited range the source dropped). For a stream that is not
    /// a fork, <paramref name="sourceEffectiveStart"/> is null and the result is <paramref name="ownStart"/>.
    /// </summary>
    public static long EffectiveStart(long ownStart, long forkPosition, long? sourceEffectiveStart) =>
        sourceEffectiveStart is { } source ? Math.Max(ownStart, Math.Min(forkPosition, source)) : ownStart;

    /// <summary>
    /// How far apart a stream's append-time samples are for <paramref name="maxAge"/>: a hundredth of it, between one
    /// second and one hour, so a stream keeps about a hundred samples and age is enforced to within 1 % of it.
    /// </summary>
    public static TimeSpan SampleInterval(TimeSpan maxAge) =>
        TimeSpan.FromTicks(Math.Clamp(maxAge.Ticks / 100, TimeSpan.TicksPerSecond, TimeSpan.TicksPerHour));
}
