using DurableStreams.Core;

namespace DurableStreams.Storage.Files;

/// <summary>Deleting and expiring streams (with the removals a fork chain then allows), the TTL sweep and access-time upkeep.</summary>
public sealed partial class FileStreamStore
{
    /// <inheritdoc />
    public async ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        DiskStream? stream;
        while (true)
        {
            (stream, var status) = Find(name, touch: false);
            if (stream is null)
            {
                return new DeleteResult(status == ReadStatus.Gone ? DeleteStatus.Gone : DeleteStatus.NotFound);
            }
            await _structure.WaitAsync(cancellationToken);
            // Unloading takes the structure lock too: an entry unloaded since the lookup is looked up again.
            if (!stream.Unloaded)
            {
                break;
            }
            _structure.Release();
        }
        try
        {
            if (stream.Removed)
            {
                return new DeleteResult(DeleteStatus.NotFound);
            }
            if (stream.SoftDeleted)
            {
                return new DeleteResult(DeleteStatus.Gone);
            }
            // Durable first, then visible: if the commit fails the stream is exactly as it was, here and after a restart.
            if (stream.RefCount > 0)
            {
                var meta = stream.Meta with { SoftDeleted = true };
                await _committer.Enqueue(new CommitWork { Apply = w => w.PutMeta(meta) });
                stream.Meta = meta;
                WakeAll(stream);
            }
            else
            {
                var removed = RemovalPlan(stream);
                await _committer.Enqueue(RemovalWork(removed, deleteFiles: false));
                ApplyRemoval(removed);
                foreach (var gone in removed)
                {
                    DeleteFile(gone);
                }
            }
            Raise(StreamChangeKind.Deleted, stream, default, _time.GetUtcNow());
            return new DeleteResult(DeleteStatus.Deleted);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new DeleteResult(DeleteStatus.StorageFailure);
        }
        finally
        {
            _structure.Release();
        }
    }

    /// <summary>
    /// Expires under the structure lock. An expired stream is absent to clients at once (its name can be reused); if
    /// forks still read through it, its record and bytes stay until the last one lets go.
    /// </summary>
    private void ExpireLocked(DiskStream stream)
    {
        // An unloaded entry is not the stream any more: its next lookup (or the sweep of streams not loaded) expires it.
        if (stream.Removed || stream.SoftDeleted || stream.Unloaded)
        {
            return;
        }
        Task commit;
        if (stream.RefCount > 0)
        {
            _streams.TryRemove(stream);
            stream.Removed = true;
            var meta = stream.Meta with { Detached = true };
            stream.Meta = meta;
            WakeAll(stream);
            commit = _committer.Enqueue(new CommitWork
            {
                Apply = w =>
                {
                    // Only free the name if it still points at this stream (it may have been re-created since).
                    w.DeleteName(meta.Name);
                    w.PutMeta(meta);
                },
            });
        }
        else
        {
            // Expiry is decided by the clock, so it may become visible before it is durable: after a restart the
            // stream is expired all the same.
            var removed = RemovalPlan(stream);
            ApplyRemoval(removed);
            commit = _committer.Enqueue(RemovalWork(removed, deleteFiles: true));
        }
        Raise(StreamChangeKind.Expired, stream, default, _time.GetUtcNow());
        _ = commit.ContinueWith(t => LogBackgroundFailure(_logger, t.Exception!, "expiring " + stream.Name), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>
    /// The streams a removal takes away: the stream, then each source up the chain that was only kept (soft-deleted or
    /// expired) for the fork being removed. Changes nothing.
    /// </summary>
    private static List<DiskStream> RemovalPlan(DiskStream stream)
    {
        var removed = new List<DiskStream> { stream };
        var current = stream;
        while (current.Source is { } source && source.RefCount == 1 && (source.SoftDeleted || source.Removed))
        {
            removed.Add(source);
            current = source;
        }
        return removed;
    }

    /// <summary>Applies a removal plan in memory under the structure lock: names freed, reference counts released.</summary>
    private void ApplyRemoval(List<DiskStream> removed)
    {
        foreach (var gone in removed)
        {
            _streams.TryRemove(gone);
            _loaded.TryRemove(gone.Id, out _);
            gone.Removed = true;
            if (gone.Source is { } source)
            {
                source.RefCount--;
            }
            WakeAll(gone);
        }
    }

    private CommitWork RemovalWork(List<DiskStream> removed, bool deleteFiles)
    {
        var names = removed.Where(g => !g.Meta.Detached).Select(g => (g.Name, g)).ToList();
        return new CommitWork
        {
            Apply = w =>
            {
                foreach (var (name, gone) in names)
                {
                    // The name may already belong to a newer stream (re-created after an expiry).
                    if (!_streams.TryGetLoaded(name, out var current) || current == gone)
                    {
                        w.DeleteName(name);
                    }
                }
                foreach (var gone in removed)
                {
                    w.DeleteStream(gone.Id);
                }
            },
            OnCommitted = deleteFiles
                ? () =>
                {
                    foreach (var gone in removed)
                    {
                        DeleteFile(gone);
                    }
                }
                : null,
        };
    }

    private static void WakeAll(DiskStream stream)
    {
        lock (stream.Gate)
        {
            stream.Signal.Publish();
        }
    }

    private void Sweep()
    {
        if (Volatile.Read(ref _disposed) == 1)
        {
            return;
        }
        var now = _time.GetUtcNow();
        foreach (var stream in _streams.Expired(now))
        {
            _structure.Wait();
            try
            {
                ExpireLocked(stream);
            }
            finally
            {
                _structure.Release();
            }
        }
        // Streams not loaded since start-up: LMDB's expiring index, checked by their persisted access times.
        SweepUnloaded(now);
        UnloadIdleInBackground();
    }

    /// <summary>Persists sliding-TTL refreshes made by reads, in one batch, off the read path.</summary>
    private void PersistAccessTimes()
    {
        var updates = new List<(long Id, long Ticks, DiskStream Stream)>();
        foreach (var stream in _streams.Values)
        {
            var ticks = Volatile.Read(ref stream.LastAccessTicks);
            if (stream.Meta.TtlSeconds is not null && ticks != stream.PersistedAccessTicks && !stream.Removed)
            {
                updates.Add((stream.Id, ticks, stream));
            }
        }
        if (updates.Count == 0)
        {
            return;
        }
        var commit = _committer.Enqueue(new CommitWork
        {
            Apply = w =>
            {
                foreach (var (id, ticks, stream) in updates)
                {
                    if (!stream.Removed)
                    {
                        w.PutAccess(id, ticks);
                    }
                }
            },
            OnCommitted = () =>
            {
                foreach (var (_, ticks, stream) in updates)
                {
                    stream.PersistedAccessTicks = ticks;
                }
            },
        });
        _ = commit.ContinueWith(t => LogBackgroundFailure(_logger, t.Exception!, "persisting access times"), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }
}
