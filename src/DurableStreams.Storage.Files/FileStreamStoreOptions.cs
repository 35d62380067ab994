using DurableStreams.Core;
namespace DurableStreams.Storage.Files;

/// <summary>When an append is acknowledged relative to the disk.</summary>
public enum DurabilityMode
{
    /// <summary>
    /// Acknowledge after the commit-log record holding the data and its metadata is on disk (fdatasync). Loses nothing
    /// on a crash or power cut. Concurrent appends share each sync (group commit). The default.
    /// </summary>
    Always,
    /// <summary>
    /// Acknowledge after the data is written to the OS; sync every <see cref="FileStreamStoreOptions.SyncInterval"/>.
    /// A process crash loses nothing; a power cut or kernel crash can lose about one interval of acknowledged appends.
    /// </summary>
    Interval,
    /// <summary>
    /// Never sync; the OS writes back when it likes. A process crash loses nothing; a power cut or kernel crash can lose
    /// anything not yet written back and can leave the metadata unusable. For tests and scratch data.
    /// </summary>
    None,
}

/// <summary>Settings of the durable file store.</summary>
public sealed class FileStreamStoreOptions
{
    /// <summary>The data directory (created if missing). One server process may use it at a time.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>When appends are acknowledged; default <see cref="DurabilityMode.Always"/>.</summary>
    public DurabilityMode Durability { get; init; } = DurabilityMode.Always;

    /// <summary>Sync period for <see cref="DurabilityMode.Interval"/>; default 100 ms.</summary>
    public TimeSpan SyncInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Clock for TTL, expiry and live waits.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>How often expired streams nobody reads are reclaimed; default 1 s.</summary>
    public TimeSpan SweepInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often read-only TTL refreshes are persisted. Reads never write metadata on their own path, so a restart can
    /// forget at most this much sliding-TTL refresh. Default 10 s.
    /// </summary>
    public TimeSpan AccessPersistInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Maximum JSON nesting depth accepted on append.</summary>
    public int MaxJsonDepth { get; init; } = Protocol.JsonFraming.DefaultMaxDepth;

    /// <summary>
    /// Most forks a fork chain may be deep (a stream that is not a fork is depth 0, its fork 1, ...); a fork that would be
    /// deeper is refused with 400. Default <see cref="ForkRules.DefaultMaxForkDepth"/> (100). A chain made deeper under
    /// a higher limit keeps working after the limit is lowered; only new forks below it are refused.
    /// </summary>
    public int MaxForkDepth { get; init; } = ForkRules.DefaultMaxForkDepth;

    /// <summary>
    /// Most messages (values of a top-level JSON array) one append or initial body may carry; a body with more is refused
    /// whole with 413. Default <see cref="AppendRules.DefaultMaxMessagesPerAppend"/> (100,000).
    /// </summary>
    public int MaxMessagesPerAppend { get; init; } = AppendRules.DefaultMaxMessagesPerAppend;

    /// <summary>
    /// Retention policies by stream name (issue 18): the store records append times for streams whose policy has a
    /// maximum age, and <see cref="DurableStreams.Core.Retention.IStreamRetention.ApplyRetentionAsync"/> applies them. Default
    /// <see cref="DurableStreams.Core.Retention.RetentionPolicies.None"/> (keep everything).
    /// </summary>
    public DurableStreams.Core.Retention.RetentionPolicies Retention { get; init; } = DurableStreams.Core.Retention.RetentionPolicies.None;

    /// <summary>
    /// How long an idle producer's (epoch, seq) is kept; after that the producer is treated as new and its record is
    /// removed. Default 30 days (<see cref="ProducerRules.DefaultPersistentRetention"/>);
    /// <see cref="Timeout.InfiniteTimeSpan"/> keeps it as long as the stream.
    /// </summary>
    public TimeSpan ProducerRetention { get; init; } = ProducerRules.DefaultPersistentRetention;

    /// <summary>
    /// Most stream data files kept open at once; idle ones beyond this are closed and reopened on use, so a server with
    /// many streams stays under the process's file-descriptor limit. Default 2048.
    /// </summary>
    public int MaxOpenFiles { get; init; } = 2048;

    /// <summary>
    /// Most streams kept in memory. A stream is loaded by its first lookup (or its creation) and stays loaded while it
    /// is used; past this number the sweep (every <see cref="SweepInterval"/>) drops the least recently used idle ones
    /// (no commit in flight, no waiting reader, no fork loaded on top of it, everything checkpointed) until a tenth
    /// under it, and they load again from the metadata on their next lookup. Loaded streams can briefly exceed it
    /// between sweeps. Default 100,000 (about 1.4 KB of memory each).
    /// </summary>
    public int MaxLoadedStreams { get; init; } = 100_000;

    /// <summary>LMDB map size: the most metadata the environment can hold (virtual; disk grows with use). Default 64 GiB.</summary>
    public long MetadataMapSize { get; init; } = 64L << 30;

    /// <summary>
    /// Test hook: recovery replays the commit log but stops before moving the log to its next generation, as a crash at
    /// that moment would, so the next open replays the same records again.
    /// </summary>
    internal bool CrashBeforeLogRestart { get; init; }

    /// <summary>
    /// Records read from LMDB to load streams and frame indexes after which LMDB's mapped pages are given back (the
    /// process's resident memory would otherwise grow with the frames read). Internal: tests lower it. Default 16,384.
    /// </summary>
    internal int MappedPagesReleaseRecords { get; init; } = 16_384;
}
