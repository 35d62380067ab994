using DurableStreams.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableStreams.Storage.Postgres;

/// <summary>Settings of the PostgreSQL store.</summary>
public sealed class PostgresStreamStoreOptions
{
    /// <summary>
    /// Npgsql connection string. Unless it says otherwise the store sets a 5 s connect timeout and a 15 s command timeout,
    /// so an unreachable server fails a request (503) instead of hanging it.
    /// </summary>
    public required string ConnectionString { get; set; }

    /// <summary>
    /// The schema holding the store's tables; default <c>durable_streams</c>. Nodes of one cluster must use the same
    /// schema; tests use one schema per test.
    /// </summary>
    public string Schema { get; set; } = "durable_streams";

    /// <summary>
    /// Where the store logs what it recovers from on its own: the cross-node listener losing and regaining its
    /// connection, NOTIFYs that could not be sent, failed expiry sweeps (event ids 4000–4099). Default: no logging.
    /// </summary>
    public ILoggerFactory LoggerFactory { get; set; } = NullLoggerFactory.Instance;

    /// <summary>Clock for TTL, expiry and live waits; tests pass a fake.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>How often this node's sweeper looks for expired streams; default 1 s. Any number of nodes may sweep.</summary>
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
    /// maximum age, and <see cref="DurableStreams.Core.Retention.IStreamRetention.ApplyRetentionAsync"/> applies them. Default
    /// <see cref="DurableStreams.Core.Retention.RetentionPolicies.None"/> (keep everything).
    /// </summary>
    public DurableStreams.Core.Retention.RetentionPolicies Retention { get; set; } = DurableStreams.Core.Retention.RetentionPolicies.None;

    /// <summary>
    /// How long an idle producer's (epoch, seq) is kept; after that the producer is treated as new and its row is
    /// deleted by the sweeper. Default 30 days (<see cref="ProducerRules.DefaultPersistentRetention"/>);
    /// <see cref="Timeout.InfiniteTimeSpan"/> keeps it as long as the stream.
    /// </summary>
    public TimeSpan ProducerRetention { get; set; } = ProducerRules.DefaultPersistentRetention;

    /// <summary>
    /// LISTEN/NOTIFY wake-ups between nodes (one listening connection per node); default on. Off, a node's long-polls
    /// and SSE readers see only appends made through the same node until their timeout.
    /// </summary>
    public bool CrossNodeNotifications { get; set; } = true;

    /// <summary>Largest data row; longer messages are split across rows. Default 1 MiB.</summary>
    public int MaxRowBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Appends of different streams arriving together on this node share one transaction and one commit (one round trip
    /// of <c>ds_append</c> calls, streams locked in name order; an append waits only while
    /// <see cref="AppendBatches"/> batches are already running). Answers, order within a stream and failures stay per
    /// append: a batch that fails is retried append by append. Default true: measured with scripts/pgbench at 64
    /// connections it did 1.1-1.8x the appends of unbatched ones, with no cost seen on one connection, where a lone
    /// append goes at once (docs/postgres.md, "Measurements").
    /// </summary>
    public bool BatchAppends { get; set; } = true;

    /// <summary>With <see cref="BatchAppends"/>: most batches in flight per node (each on its own connection); default 4.</summary>
    internal int AppendBatches { get; set; } = 4;

    /// <summary>
    /// Benchmark switch (scripts/pgbench <c>--locking</c>): false sends every append through the locking transaction
    /// (three round trips) instead of <c>ds_append</c>, to measure the difference. Default true.
    /// </summary>
    internal bool OneRoundTripAppends { get; set; } = true;
}
