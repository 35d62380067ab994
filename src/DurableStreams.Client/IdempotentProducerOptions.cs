namespace DurableStreams.Client;

/// <summary>Batching and pipelining settings of an <see cref="IdempotentProducer"/>.</summary>
public sealed record IdempotentProducerOptions
{
    /// <summary>5 ms linger, 1 MiB batches, 5 batches in flight.</summary>
    public static IdempotentProducerOptions Default { get; } = new();

    /// <summary>How long the first queued message waits for company before its batch is sent; default 5 ms. Zero sends at once.</summary>
    public TimeSpan Linger { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>A batch is sent once it holds this many bytes (a larger single message goes alone); default 1 MiB.</summary>
    public int MaxBatchBytes { get; init; } = 1024 * 1024;

    /// <summary>A batch is sent once it holds this many messages; default <see cref="int.MaxValue"/> (bytes and linger decide).</summary>
    public int MaxBatchItems { get; init; } = int.MaxValue;

    /// <summary>
    /// Most batches sent and not yet acknowledged at once (pipelining); default 5. 1 sends one batch at a time. Order
    /// is kept either way: batches carry consecutive <c>Producer-Seq</c> values, and one that overtakes its predecessor
    /// (the server answers 409 with <c>Producer-Expected-Seq</c>) is re-sent once the predecessor is acknowledged.
    /// </summary>
    public int MaxInFlight { get; init; } = 5;
}
