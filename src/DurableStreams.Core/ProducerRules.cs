namespace DurableStreams.Core;

/// <summary>
/// Limits and expiry of idempotent producer state (PROTOCOL.md "Producer State Cleanup"), shared by every store.
/// A producer idle for the retention period is forgotten and treated as new: its next append must start at
/// <c>Producer-Seq: 0</c> (any other seq gets 409 with <c>Producer-Expected-Seq: 0</c>) and a zombie with an older
/// epoch is no longer fenced.
/// </summary>
public static class ProducerRules
{
    /// <summary>Longest <c>Producer-Id</c> accepted, in UTF-8 bytes; longer ids get 400.</summary>
    public const int MaxIdBytes = 256;

    /// <summary>
    /// Longest <c>Stream-Seq</c> accepted, in UTF-8 bytes; longer values get 400. The last value is kept per stream and
    /// rewritten by every append that carries one, so an unbounded value would make each append as costly as it is long.
    /// </summary>
    public const int MaxStreamSeqBytes = 256;

    /// <summary>Default producer retention of the memory store: 7 days, as the protocol recommends.</summary>
    public static readonly TimeSpan DefaultMemoryRetention = TimeSpan.FromDays(7);

    /// <summary>Default producer retention of the persistent stores (file, PostgreSQL): 30 days.</summary>
    public static readonly TimeSpan DefaultPersistentRetention = TimeSpan.FromDays(30);

    /// <summary>Longest time between two walks of one stream's producers for expired ones.</summary>
    private static readonly TimeSpan MaxSweepPeriod = TimeSpan.FromHours(1);

    /// <summary>Throws when <paramref name="retention"/> is not a positive duration (or infinite).</summary>
    public static TimeSpan ValidateRetention(TimeSpan retention) =>
        retention > TimeSpan.Zero || retention == Timeout.InfiniteTimeSpan
            ? retention
            : throw new ArgumentOutOfRangeException(nameof(retention), retention, "The producer retention must be positive.");

    /// <summary>
    /// Removes producers idle for <paramref name="retention"/> or longer from <paramref name="state"/>, at most once per
    /// min(retention, 1 hour) per stream, so the walk is amortised over the appends in between. Callers hold the
    /// stream's critical section. Returns the removed ids (to delete from storage), or null when none were removed.
    /// </summary>
    public static List<string>? SweepIfDue(StreamState state, DateTimeOffset now, TimeSpan retention)
    {
        if (retention == Timeout.InfiniteTimeSpan || now < state.NextProducerSweep)
        {
            return null;
        }
        state.NextProducerSweep = now + (retention < MaxSweepPeriod ? retention : MaxSweepPeriod);
        List<string>? removed = null;
        foreach (var (id, producer) in state.Producers)
        {
            if (producer.IsExpired(now, retention))
            {
                (removed ??= []).Add(id);
            }
        }
        if (removed is not null)
        {
            state.Producers = state.Producers.RemoveRange(removed);
        }
        return removed;
    }
}
