using DurableStreams.Protocol.Diagnostics;
using DurableStreams.Core;
using System.Collections.Concurrent;
using System.Globalization;
using DurableStreams.Core.Live;
using DurableStreams.Core.Local;
using DurableStreams.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace DurableStreams.Storage.Files;

/// <summary>
/// The durable file store: per-stream data files of raw bytes plus an LMDB environment holding names, configuration,
/// writer state (tail, closure, Stream-Seq, producers) and a CRC-32C frame index. An append writes its bytes to the
/// stream's data file, then the <see cref="GroupCommitter"/> logs those bytes with the new tail, producer state and
/// frames as one commit-log record (one record and one sync for every operation in the batch, whatever its stream);
/// then the append is acknowledged and published. Checkpoints later sync the data files, apply the logged changes to
/// LMDB in one transaction and empty the log. On open the log is replayed into LMDB and the data files, and every data
/// file is cut back to its committed tail, so a torn or garbage tail is never served and never swallows a later append.
/// See docs/storage-format.md.
/// <para>
/// The partial files: Create, Append and Reads (with lookups and waits) for the contract's operations; Removal for
/// delete, expiry and the TTL sweep; DataFiles for the open-file cache; Recovery for opening a data directory; Retention
/// for moving the retained start, append-time samples and hole punching (IStreamRetention); Compaction for
/// State-Protocol snapshots in their own files (IStreamCompaction).
/// </para>
/// </summary>
public sealed partial class FileStreamStore : IStreamStore, IStreamCatalog, IDirectReadStore
{
    /// <summary>Largest frame; each frame has its own CRC, so a read verifies at most this much beyond what it returns.</summary>
    public const int MaxFrameBytes = 64 * 1024;

    private readonly FileStreamStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _streamsDirectory;
    private readonly System.IO.FileStream _lock;
    private readonly MetadataStore _metadata;
    private readonly GroupCommitter _committer;
    private readonly DeadlineScheduler _deadlines;
    private readonly StreamTable<DiskStream> _streams;

    /// <summary>The streams loaded (by a lookup, as a fork's source, or created; not unloaded since), by id; detached ones included.</summary>
    private readonly ConcurrentDictionary<long, DiskStream> _loaded = new();

    /// <summary>When the sweep next reads LMDB's expiring index: the earliest expiry among the streams not loaded.</summary>
    private DateTimeOffset _nextUnloadedExpiry;
    private readonly object _sweepGate = new();
    private readonly SemaphoreSlim _structure = new(1, 1);
    private readonly ITimer _sweeper;
    private readonly ITimer _accessPersister;
    private readonly ConcurrentQueue<DiskStream> _openHandles = new();
    private int _openHandleCount;
    private long _nextId;
    private int _disposed;

    private readonly CommitLog _log;
    private readonly StreamChangeFeed _changes = new();

    private FileStreamStore(FileStreamStoreOptions options, ILogger logger, System.IO.FileStream lockFile, MetadataStore metadata, CommitLog log)
    {
        _log = log;
        _options = options;
        ProducerRules.ValidateRetention(options.ProducerRetention);
        _time = options.TimeProvider;
        _logger = logger;
        _lock = lockFile;
        _metadata = metadata;
        _streamsDirectory = Path.Combine(options.DataDirectory, "streams");
        _deadlines = new DeadlineScheduler(_time);
        _streams = new StreamTable<DiskStream> { Loader = LoadByName };
        ReplayCommitLog();
        _committer = new GroupCommitter(metadata, log, options.Durability, options.SyncInterval, _streamsDirectory, DataPath, ex => LogCommitFailed(_logger, ex), Faults);
        _sweeper = _time.CreateTimer(static s => ((FileStreamStore)s!).Sweep(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _accessPersister = _time.CreateTimer(static s => ((FileStreamStore)s!).PersistAccessTimes(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <inheritdoc/>
    public IStreamChangeFeed Changes => _changes;

    /// <summary>Raises a committed change (creations and appends under the stream's gate, so in commit order).</summary>
    private void Raise(StreamChangeKind kind, DiskStream stream, StreamOffset tail, DateTimeOffset at, string? contentType = null)
    {
        if (_changes.HasListeners)
        {
            _changes.Publish(new StreamChanged(kind, stream.Name, tail.InGeneration(GenerationOf(stream)), at) { ContentType = contentType, ForkedFrom = stream.Source?.Name });
        }
    }

    /// <summary>Injected I/O faults for tests.</summary>
    internal FileStoreFaults Faults { get; } = new();

    /// <summary>The data directory.</summary>
    public string DataDirectory => _options.DataDirectory;

    /// <summary>True once <see cref="DisposeAsync"/> has begun; the server's readiness check reports such a store as not ready.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) == 1;

    /// <summary>Number of group-commit batches so far.</summary>
    public long CommitBatches => _committer.BatchCount;

    /// <summary>Bytes of commit-log records not yet checkpointed (for tests).</summary>
    internal long CommitLogLength => _log.Length;

    /// <summary>
    /// Applies the commit log to LMDB and empties it now (normally this happens by size and time). Throws what the
    /// checkpoint failed with, e.g. when the metadata is full.
    /// </summary>
    internal Task CheckpointAsync() => _committer.Enqueue(new CommitWork { Apply = static _ => { }, Checkpoint = true });

    /// <summary>Number of checkpoints (commit log applied to LMDB and emptied) so far.</summary>
    public long Checkpoints => _committer.CheckpointCount;

    /// <summary>Number of data files currently open.</summary>
    public int OpenFileCount => Volatile.Read(ref _openHandleCount);

    /// <summary>Number of live (not soft-deleted) streams (counts LMDB's names: a cursor pass, not for hot paths).</summary>
    public int Count => LiveNames().Count;

    /// <summary>Number of streams loaded (looked up, forked from, or created, and not unloaded since); for tests and diagnostics.</summary>
    internal int LoadedCount => _loaded.Count;

    /// <summary>Test hook: whether the stream holding <paramref name="name"/> is loaded (never loads it).</summary>
    internal bool IsLoaded(string name) => _streams.TryGetLoaded(name, out _);

    /// <summary>Test hook: the committed producer states of a stream, or null when there is no such stream.</summary>
    internal IReadOnlyDictionary<string, ProducerState>? CommittedProducers(string name)
    {
        if (!_streams.TryGetValue(name, out var stream))
        {
            return null;
        }
        lock (stream.Gate)
        {
            return stream.Committed.Producers;
        }
    }

    /// <summary>Test hook: how many producer records LMDB holds (what the last checkpoint applied).</summary>
    internal int ProducerRecordCount() => _metadata.CountProducers();

    /// <inheritdoc/>
    public IReadOnlyList<string> ListStreamNames() => LiveNames();

    /// <summary>
    /// Opens (or creates) the store in <see cref="FileStreamStoreOptions.DataDirectory"/>: takes the directory lock, opens
    /// LMDB and replays the commit log. Streams are loaded on first lookup, when their data file is cut back to the
    /// committed tail; nothing at open is proportional to the number of streams.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another process already uses the directory.</exception>
    public static FileStreamStore Open(FileStreamStoreOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<FileStreamStore>();
        var directory = Path.GetFullPath(options.DataDirectory);
        // Private to the server's user (0700 directories, 0600 files) whatever the umask; looser existing modes are tightened.
        Tightened(logger, directory, PrivateFiles.CreateDirectory(directory));
        Tightened(logger, Path.Combine(directory, "streams"), PrivateFiles.CreateDirectory(Path.Combine(directory, "streams")));
        System.IO.FileStream lockFile;
        try
        {
            // FileShare.None takes an exclusive advisory lock (flock) on Unix: a second server fails here, at once.
            lockFile = new System.IO.FileStream(Path.Combine(directory, "LOCK"), PrivateFiles.Options(FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
            Tightened(logger, lockFile.Name, PrivateFiles.Restrict(lockFile.Name, PrivateFiles.FileMode));
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException($"The data directory '{directory}' is in use by another process.", ex);
        }
        MetadataStore? metadata = null;
        CommitLog? log = null;
        try
        {
            try
            {
                metadata = new MetadataStore(Path.Combine(directory, "meta"), options.MetadataMapSize, options.Durability, options.MappedPagesReleaseRecords);
            }
            catch (LightningDB.LightningException ex)
            {
                throw new IOException($"Could not open the metadata of data directory '{directory}': {ex.Message}", ex);
            }
            var resolved = new FileStreamStoreOptions
            {
                DataDirectory = directory,
                Durability = options.Durability,
                SyncInterval = options.SyncInterval,
                TimeProvider = options.TimeProvider,
                SweepInterval = options.SweepInterval,
                AccessPersistInterval = options.AccessPersistInterval,
                MaxJsonDepth = options.MaxJsonDepth,
                MaxForkDepth = options.MaxForkDepth,
                MaxMessagesPerAppend = options.MaxMessagesPerAppend,
                MetadataMapSize = options.MetadataMapSize,
                MaxOpenFiles = Math.Max(16, options.MaxOpenFiles),
                MaxLoadedStreams = Math.Max(1, options.MaxLoadedStreams),
                ProducerRetention = options.ProducerRetention,
                Retention = options.Retention,
                CrashBeforeLogRestart = options.CrashBeforeLogRestart,
                MappedPagesReleaseRecords = options.MappedPagesReleaseRecords,
            };
            var logPath = Path.Combine(directory, "commit.log");
            var newLog = !System.IO.File.Exists(logPath);
            if (newLog)
            {
                // Created 0600 here so the log never exists with the umask's mode.
                using (new System.IO.FileStream(logPath, PrivateFiles.Options(FileMode.CreateNew, FileAccess.Write, FileShare.None)))
                {
                }
            }
            log = new CommitLog(logPath, metadata.ReadLogGeneration());
            RestrictFiles(logger, directory);
            if (newLog)
            {
                // The log's directory entry must be durable before anything relies on the log.
                NativeIo.SyncDirectory(directory);
            }
            var store = new FileStreamStore(resolved, logger, lockFile, metadata, log);
            store.Recover();
            store._sweeper.Change(options.SweepInterval, options.SweepInterval);
            store._accessPersister.Change(options.AccessPersistInterval, options.AccessPersistInterval);
            return store;
        }
        catch
        {
            log?.Dispose();
            metadata?.Dispose();
            lockFile.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _sweeper.DisposeAsync();
        await _accessPersister.DisposeAsync();
        PersistAccessTimes();
        _committer.Dispose();
        _deadlines.Dispose();
        // The open-file queue also holds an unloaded stream that an operation begun before the unload reopened.
        foreach (var stream in _loaded.Values.Concat(_openHandles))
        {
            lock (stream.Gate)
            {
                CloseHandleLocked(stream);
            }
        }
        _log.Dispose();
        _metadata.Dispose();
        _lock.Dispose();
        _structure.Dispose();
        await _changes.DisposeAsync();
    }

    /// <summary>
    /// Tightens the commit log and LMDB files to 0600 where they are looser. A data file is checked when its stream is
    /// loaded (<see cref="RecoverDataFile"/>), not here: that would be one stat per stream at every start.
    /// </summary>
    private static void RestrictFiles(ILogger logger, string directory)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var files = new[] { Path.Combine(directory, "commit.log"), Path.Combine(directory, "meta", "data.mdb"), Path.Combine(directory, "meta", "lock.mdb") };
        foreach (var file in files)
        {
            if (System.IO.File.Exists(file))
            {
                Tightened(logger, file, PrivateFiles.Restrict(file, PrivateFiles.FileMode));
            }
        }
    }

    private static void Tightened(ILogger logger, string path, UnixFileMode? previous)
    {
        if (previous is { } mode)
        {
            LogTightened(logger, path, mode);
        }
    }

    private string DataPath(long id) => Path.Combine(_streamsDirectory, id.ToString("x16", CultureInfo.InvariantCulture) + ".dat");

    [LoggerMessage(EventId = LogEvents.GroupCommitFailed, Level = LogLevel.Error, Message = "A group commit failed; the appends in it were rolled back")]
    private static partial void LogCommitFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = LogEvents.ChecksumFailed, Level = LogLevel.Error, Message = "Stream {Name} failed its checksum at position {Position}; it is unavailable until repaired")]
    private static partial void LogCorrupt(ILogger logger, string name, long position);

    [LoggerMessage(EventId = LogEvents.UnacknowledgedTailCut, Level = LogLevel.Warning, Message = "Recovered stream {Name}: cut {Bytes} unacknowledged bytes from its tail")]
    private static partial void LogTruncated(ILogger logger, string name, long bytes);

    [LoggerMessage(EventId = LogEvents.DataFileShort, Level = LogLevel.Error, Message = "Stream {Name} is shorter than its committed tail ({Length} of {Expected} bytes); it fails closed")]
    private static partial void LogMissingData(ILogger logger, string name, long length, long expected);

    [LoggerMessage(EventId = LogEvents.BackgroundWorkFailed, Level = LogLevel.Warning, Message = "Background work failed: {What}")]
    private static partial void LogBackgroundFailure(ILogger logger, Exception exception, string what);

    [LoggerMessage(EventId = LogEvents.ProducersMigrated, Level = LogLevel.Information, Message = "Moved the producers of {Streams} streams to their own records (state format 1 to 2)")]
    private static partial void LogProducersMigrated(ILogger logger, int streams);
    [LoggerMessage(EventId = LogEvents.MetadataIndexed, Level = LogLevel.Information, Message = "Indexed the metadata's forks and expiring streams (once, for a data directory written by an earlier build)")]
    private static partial void LogIndexed(ILogger logger);

    [LoggerMessage(EventId = LogEvents.PermissionsTightened, Level = LogLevel.Information, Message = "Tightened the permissions of {Path} (was {Mode}): the data directory is private to the server's user")]
    private static partial void LogTightened(ILogger logger, string path, UnixFileMode mode);

    [LoggerMessage(EventId = LogEvents.CommitLogReplayed, Level = LogLevel.Information, Message = "Replayed {Records} commit-log records")]
    private static partial void LogReplayed(ILogger logger, int records);

    [LoggerMessage(EventId = LogEvents.AcknowledgedDataLost, Level = LogLevel.Warning, Message = "Stream {Name} lost {Bytes} bytes that were acknowledged but not yet synced (durability {Mode})")]
    private static partial void LogRelaxedLoss(ILogger logger, string name, long bytes, DurabilityMode mode);
}
