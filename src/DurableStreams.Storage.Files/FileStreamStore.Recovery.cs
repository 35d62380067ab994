using DurableStreams.Core;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

public sealed partial class FileStreamStore
{
    /// <summary>
    /// Applies what the commit log holds beyond the last checkpoint: metadata changes into LMDB and data bytes into the
    /// data files (both idempotent), syncs them, and empties the log. Runs before anything reads LMDB.
    /// </summary>
    private void ReplayCommitLog()
    {
        var records = _log.ReadRecords();
        if (records.Count > 0)
        {
            var handles = new Dictionary<long, SafeFileHandle>();
            try
            {
                _metadata.Write(writer =>
                {
                    foreach (var payload in records)
                    {
                        CommitOps.ApplyTo(payload, writer,
                            data: (id, position, bytes) =>
                            {
                                if (!handles.TryGetValue(id, out var handle))
                                {
                                    handle = System.IO.File.OpenHandle(DataPath(id), FileMode.OpenOrCreate, FileAccess.ReadWrite);
                                    PrivateFiles.Restrict(handle);
                                    handles[id] = handle;
                                }
                                RandomAccess.Write(handle, bytes.Span, position);
                            },
                            deleteFile: id =>
                            {
                                if (handles.Remove(id, out var handle))
                                {
                                    handle.Dispose();
                                }
                                System.IO.File.Delete(DataPath(id));
                            });
                    }
                });
                foreach (var handle in handles.Values)
                {
                    NativeIo.SyncData(handle);
                }
            }
            finally
            {
                foreach (var handle in handles.Values)
                {
                    handle.Dispose();
                }
            }
            NativeIo.SyncDirectory(_streamsDirectory);
            LogReplayed(_logger, records.Count);
        }
        if (records.Count > 0 && _options.CrashBeforeLogRestart)
        {
            return;
        }
        if (records.Count > 0)
        {
            // Only now that data and metadata are durable does the log move on; a crash before this replays it again.
            var next = _log.Generation + 1;
            _metadata.Write(writer => writer.PutLogGeneration(next));
            _log.Restart(next);
        }
        else
        {
            _log.Restart(_log.Generation);
        }
    }

    /// <summary>
    /// Makes the store ready without touching any stream: brings an earlier build's metadata up to the current indexes
    /// (once) and takes the next stream id from the last meta key. Streams are loaded on first lookup
    /// (<see cref="LoadByName"/>), where their data files are checked, so start-up costs the same for ten streams as
    /// for a million.
    /// </summary>
    private void Recover()
    {
        _nextUnloadedExpiry = DateTimeOffset.MinValue;
        var (migrated, indexed) = _metadata.EnsureIndexes();
        if (migrated > 0)
        {
            // Data written before producers had their own records: split version 1 state records once, durably.
            LogProducersMigrated(_logger, migrated);
        }
        if (indexed)
        {
            LogIndexed(_logger);
        }
        _nextId = _metadata.MaxId() + 1;
        RecoverSnapshotFiles(CommittedSnapshotGeneration);
    }

    /// <summary>
    /// The table's loader: the stream LMDB's <c>names</c> gives <paramref name="name"/>, loaded with its source chain
    /// (<see cref="LoadById"/>). Runs under the table's load lock, so a stream is loaded once.
    /// </summary>
    private DiskStream? LoadByName(string name)
    {
        if (Volatile.Read(ref _disposed) == 1 || _metadata.FindId(name) is not { } id)
        {
            return null;
        }
        var stream = LoadById(id);
        return stream is null || stream.Removed || stream.Meta.Detached || stream.Name != name ? null : stream;
    }

    /// <summary>
    /// A stream by id: the loaded one, or its LMDB records made into a <see cref="DiskStream"/> (source chain first,
    /// fork count from the <c>forks</c> index, data file cut back to the committed tail). LMDB is exact here for a
    /// stream not loaded yet: the commit log was replayed into it at open, and every change since start-up was made to
    /// a loaded stream (a fork loads its source; deletes, appends, expiry and retention look the stream up first).
    /// </summary>
    private DiskStream? LoadById(long id)
    {
        if (_loaded.TryGetValue(id, out var known))
        {
            return known;
        }
        // Up the fork chain in a loop to the first loaded stream (or the root), then built from the top down: a chain
        // may be deeper than the current MaxForkDepth, and deeper than a thread's stack allows recursion for.
        var pending = new List<LoadedStream>();
        DiskStream? source = null;
        for (long? next = id; next is { } current;)
        {
            if (_loaded.TryGetValue(current, out var loaded))
            {
                source = loaded;
                break;
            }
            if (_metadata.LoadStream(current) is not { } record)
            {
                if (pending.Count == 0)
                {
                    return null;
                }
                throw new InvalidDataException($"Stream '{pending[^1].Meta.Name}' forks from stream {current}, which is missing from the metadata.");
            }
            pending.Add(record);
            next = record.Meta.SourceId;
        }
        for (var i = pending.Count - 1; i >= 0; i--)
        {
            source = Build(pending[i], source);
        }
        return source;
    }

    /// <summary>Makes a loaded record into its <see cref="DiskStream"/> (its source already built) and registers it.</summary>
    private DiskStream Build(LoadedStream record, DiskStream? source)
    {
        var meta = record.Meta;
        var now = _time.GetUtcNow();
        var retainedStart = 0L;
        var compacted = default(SnapshotSpan);
        var state = new StreamState
        {
            ContentType = meta.ContentType,
            TtlSeconds = meta.TtlSeconds,
            ExpiresAt = meta.ExpiresAt,
            CreatedAt = meta.CreatedAt,
            Requested = meta.Requested,
            Tail = meta.BasePosition,
        };
        if (record.State is { } encoded)
        {
            // A version 1 record can no longer be here (migrated at open, split when replayed); its inline producers would be kept.
            var inline = Records.DecodeStateInto(encoded, state, out retainedStart, out compacted);
            var producers = state.Producers.ToBuilder();
            foreach (var (producerId, producer) in inline is null ? record.Producers : record.Producers.Concat(inline))
            {
                // Expired producers are not loaded; their records go with the stream's next producer sweep.
                if (!producer.IsExpired(now, _options.ProducerRetention))
                {
                    producers[producerId] = producer;
                }
            }
            state.Producers = producers.ToImmutable();
        }
        var stream = new DiskStream(meta, state, source, DataPath(meta.Id))
        {
            RetainedStart = retainedStart,
            PendingRetainedStart = retainedStart,
            Compacted = compacted,
            PendingCompacted = compacted,
            Space = compacted.Space,
        };
        var access = record.LastAccessTicks ?? meta.CreatedAt.UtcTicks;
        stream.LastAccessTicks = access;
        stream.PersistedAccessTicks = access;
        stream.Removed = meta.Detached;
        stream.RefCount = _metadata.CountForks(meta.Id);
        RecoverDataFile(stream);
        // A relaxed-mode rewind can cut a source below where a fork of it begins: that fork would read a hole, so it
        // fails closed instead.
        if (source is not null && source.Committed.Tail < stream.BasePosition && !stream.Corrupt)
        {
            stream.Corrupt = true;
            LogMissingData(_logger, stream.Name, source.Committed.Tail, stream.BasePosition);
        }
        _loaded[meta.Id] = stream;
        return stream;
    }

    /// <summary>
    /// The names of the live streams: the loaded ones as they are in memory, the others from a cursor over LMDB
    /// (exact for a stream not loaded; a name the table holds or removed since start-up is the table's to answer).
    /// </summary>
    private List<string> LiveNames()
    {
        var names = new List<string>(_streams.LiveNames());
        foreach (var (id, name) in _metadata.LiveNames())
        {
            if (!_loaded.ContainsKey(id) && !_streams.Decides(name))
            {
                names.Add(name);
            }
        }
        return names;
    }

    /// <summary>
    /// The sweep's view of the streams not loaded: those in LMDB's <c>expiring</c> index whose expiry (by their
    /// persisted access time) has passed are looked up, which loads them and expires them like any lookup. A stream
    /// not loaded is not read either, so its expiry never moves: the pass is skipped until the earliest one it saw.
    /// </summary>
    private void SweepUnloaded(DateTimeOffset now)
    {
        // Timer callbacks can overlap when a pass takes longer than the interval; one pass at a time.
        if (!Monitor.TryEnter(_sweepGate))
        {
            return;
        }
        try
        {
            if (now < _nextUnloadedExpiry)
            {
                return;
            }
            var expired = _metadata.ExpiredStreams(now, _loaded.ContainsKey, out _nextUnloadedExpiry);
            foreach (var (_, name) in expired)
            {
                if (!_streams.Decides(name))
                {
                    Find(name, touch: false);
                }
            }
        }
        finally
        {
            Monitor.Exit(_sweepGate);
        }
    }

    private void RecoverDataFile(DiskStream stream)
    {
        var expected = stream.Committed.Tail - stream.BasePosition;
        if (!System.IO.File.Exists(stream.FilePath))
        {
            if (expected == 0)
            {
                // Files are created by the first write; a stream without data has none.
                return;
            }
            LogMissingData(_logger, stream.Name, 0, expected);
            stream.Corrupt = true;
            return;
        }
        using var handle = System.IO.File.OpenHandle(stream.FilePath, FileMode.Open, FileAccess.ReadWrite);
        if (!OperatingSystem.IsWindows() && System.IO.File.GetUnixFileMode(handle) is var mode && (mode & ~PrivateFiles.FileMode) != 0)
        {
            // Files are 0600 whatever the umask; one copied in (or left by an old build) with a looser mode is tightened.
            PrivateFiles.Restrict(handle);
            LogTightened(_logger, stream.FilePath, mode);
        }
        var length = RandomAccess.GetLength(handle);
        if (length > expected)
        {
            // Bytes past the committed tail were never acknowledged: a torn, zeroed or garbage tail from a crash.
            RandomAccess.SetLength(handle, expected);
            NativeIo.SyncData(handle);
            LogTruncated(_logger, stream.Name, length - expected);
        }
        else if (length < expected)
        {
            if (_options.Durability == DurabilityMode.Always)
            {
                LogMissingData(_logger, stream.Name, length, expected);
                stream.Corrupt = true;
                return;
            }
            RewindToFile(stream, length);
        }
    }

    /// <summary>
    /// Relaxed durability only: metadata reached the disk before the data did. Cut the stream back to the last whole
    /// frame present in the file; what follows was acknowledged but not yet synced, which those modes allow to lose.
    /// </summary>
    private void RewindToFile(DiskStream stream, long fileLength)
    {
        var frames = _metadata.LoadFrames(stream.Id);
        var keep = 0;
        while (keep < frames.Count && frames[keep].End - stream.BasePosition <= fileLength)
        {
            keep++;
        }
        // Frames below a retained start are gone from LMDB; the stream never goes back past its start.
        var newTail = keep == 0 ? Math.Max(stream.BasePosition, stream.RetainedStart) : frames[keep - 1].End;
        LogRelaxedLoss(_logger, stream.Name, stream.Committed.Tail - newTail, _options.Durability);
        stream.Committed.Tail = newTail;
        stream.Pending = stream.Committed.Clone();
        var state = Records.EncodeState(stream.Committed, stream.RetainedStart, stream.Compacted);
        var producers = stream.Committed.Producers;
        var access = stream.PersistedAccessTicks;
        var samples = _metadata.LoadTimes(stream.Id);
        _metadata.Write(w =>
        {
            w.DeleteStream(stream.Id);
            w.PutMeta(stream.Meta);
            w.PutState(stream.Id, state);
            foreach (var (producerId, producer) in producers)
            {
                w.PutProducer(stream.Id, producerId, producer);
            }
            w.PutAccess(stream.Id, access);
            for (var i = 0; i < keep; i++)
            {
                w.PutFrame(stream.Id, frames[i]);
            }
            foreach (var (position, ticks) in samples)
            {
                if (position < newTail)
                {
                    w.PutTime(stream.Id, position, ticks);
                }
            }
        });
        using var handle = System.IO.File.OpenHandle(stream.FilePath, FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.SetLength(handle, newTail - stream.BasePosition);
        NativeIo.SyncData(handle);
    }
}
