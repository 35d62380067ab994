namespace DurableStreams.Storage.Memory;

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
    /// How long an idle producer's (epoch, seq) is kept; after that the producer is treated as new. Default 7 days
    /// (<see cref="ProducerRules.DefaultMemoryRetention"/>); <see cref="Timeout.InfiniteTimeSpan"/> keeps it forever.
    /// </summary>
    public TimeSpan ProducerRetention { get; set; } = ProducerRules.DefaultMemoryRetention;
}
