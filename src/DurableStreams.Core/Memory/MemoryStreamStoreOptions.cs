using DurableStreams.Core.Retention;

namespace DurableStreams.Core.Memory;

/// <summary>Settings of the in-memory store.</summary>
public sealed class MemoryStreamStoreOptions
{
    /// <summary>Clock for TTL, expiry and live waits; tests pass a fake.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>How often the background sweeper reclaims expired streams nobody reads; default 1 s.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Maximum JSON nesting depth accepted on append; default <see cref="Protocol.JsonFraming.DefaultMaxDepth"/>.</summary>
    public int MaxJsonDepth { get; set; } = Protocol.JsonFraming.DefaultMaxDepth;

    /// <summary>
    /// Most forks a fork chain may be deep (a stream that is not a fork is depth 0, its fork 1, ...); a fork that would be
    /// deeper is refused with 400. Default <see cref="ForkRules.DefaultMaxForkDepth"/> (100). A chain made deeper under
    /// a higher limit keeps working after the limit is lowered; only new forks below it are refused.
    /// </summary>
    public int MaxForkDepth { get; set; } = ForkRules.DefaultMaxForkDepth;

    /// <summary>
    /// Most messages (values of a top-level JSON array) one append or initial body may carry; a body with more is refused
    /// whole with 413. Default <see cref="AppendRules.DefaultMaxMessagesPerAppend"/> (100,000).
    /// </summary>
    public int MaxMessagesPerAppend { get; set; } = AppendRules.DefaultMaxMessagesPerAppend;

    /// <summary>
    /// Retention policies by stream name (issue 18): the store records append times for streams whose policy has a
    /// maximum age, and <see cref="IStreamRetention.ApplyRetentionAsync"/> applies them. Default
    /// <see cref="RetentionPolicies.None"/> (keep everything).
    /// </summary>
    public RetentionPolicies Retention { get; set; } = RetentionPolicies.None;

    /// <summary>
    /// How long an idle producer's (epoch, seq) is kept; after that the producer is treated as new. Default 7 days
    /// (<see cref="ProducerRules.DefaultMemoryRetention"/>); <see cref="Timeout.InfiniteTimeSpan"/> keeps it forever.
    /// </summary>
    public TimeSpan ProducerRetention { get; set; } = ProducerRules.DefaultMemoryRetention;
}
