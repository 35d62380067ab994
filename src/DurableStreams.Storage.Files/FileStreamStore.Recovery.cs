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
    /// Rebuilds the in-memory view from LMDB and cuts every data file back to its committed length. Cost is one stat
    /// (and at most one truncate + sync) per stream: proportional to the uncommitted tail, not to the data size.
    /// </summary>
    private void Recover()
    {
        // Data written before producers had their own records: split version 1 state records once, durably.
        if (_metadata.MigrateInlineProducers() is var migrated and > 0)
        {
            LogProducersMigrated(_logger, migrated);
        }
        var loaded = _metadata.LoadAll();
        var now = _time.GetUtcNow();
        var byId = new Dictionary<long, DiskStream>();
        var leftovers = new List<DiskStream>();
        foreach (var record in loaded)
        {
            var meta = record.Meta;
            _nextId = Math.Max(_nextId, meta.Id + 1);
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
                // A version 1 record can no longer be here (migrated above); its inline producers would be kept.
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
            DiskStream? source = null;
            if (meta.SourceId is { } sourceId && !byId.TryGetValue(sourceId, out source))
            {
                throw new InvalidDataException($"Stream '{meta.Name}' forks from stream {sourceId}, which is missing from the metadata.");
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
            if (source is not null)
            {
                source.RefCount++;
            }
            byId[meta.Id] = stream;
            RecoverDataFile(stream);
            if (!meta.Detached)
            {
                _streams.Set(stream);
            }
        }

        // A relaxed-mode rewind can cut a source below where a fork of it begins: that fork would read a hole, so it
        // fails closed instead.
        foreach (var stream in byId.Values)
        {
            if (stream.Source is { } parent && parent.Committed.Tail < stream.BasePosition && !stream.Corrupt)
            {
                stream.Corrupt = true;
                LogMissingData(_logger, stream.Name, parent.Committed.Tail, stream.BasePosition);
            }
        }

        // A soft-deleted or expired stream whose last fork went away just before a crash is garbage now.
        foreach (var stream in byId.Values.OrderByDescending(s => s.Id))
        {
            if (stream.RefCount == 0 && (stream.SoftDeleted || stream.Removed))
            {
                leftovers.Add(stream);
                if (stream.Source is { } source)
                {
                    source.RefCount--;
                }
            }
        }
        if (leftovers.Count > 0)
        {
            _metadata.Write(w =>
            {
                foreach (var stream in leftovers)
                {
                    w.DeleteName(stream.Name);
                    w.DeleteStream(stream.Id);
                }
            });
            foreach (var stream in leftovers)
            {
                _streams.TryRemove(stream);
                DeleteFile(stream);
            }
        }

        // Data files without a committed stream were created by a PUT that never committed.
        foreach (var file in Directory.EnumerateFiles(_streamsDirectory, "*.dat"))
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (!long.TryParse(name, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var id) || !byId.ContainsKey(id) || leftovers.Any(s => s.Id == id))
            {
                System.IO.File.Delete(file);
            }
        }
        NativeIo.SyncDirectory(_streamsDirectory);
        RecoverSnapshotFiles(byId);
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
