namespace DurableStreams.Storage.Files;

/// <summary>
/// Unloading idle streams: past <see cref="FileStreamStoreOptions.MaxLoadedStreams"/> the least recently used streams
/// that are provably quiescent are dropped from memory, and their next lookup loads them from LMDB exactly as after a
/// restart. A stream qualifies when it has no commit in flight (created, appended, retained, compacted), no reader
/// waiting on it, no fork counting on it, no unpersisted TTL refresh, and LMDB holds all of its commits (a checkpoint
/// ended after its last one). The decision is made twice: once to pick candidates, then, after the checkpoint, again
/// under the structure lock and each stream's gate, where nothing may have changed since (same last commit, state,
/// metadata and access time). The entry is then marked <see cref="Core.Local.LocalStream{TSelf}.Unloaded"/> and taken
/// out of the table in the same critical section, so an operation that still holds it sees the mark under the gate
/// and looks the name up again: there is never a second entry writing the same data file.
/// </summary>
public sealed partial class FileStreamStore
{
    private readonly SemaphoreSlim _unloadGate = new(1, 1);
    private long _unloadedTotal;

    /// <summary>Number of streams unloaded since start-up (for tests and diagnostics).</summary>
    internal long UnloadedTotal => Interlocked.Read(ref _unloadedTotal);

    /// <summary>
    /// Unloads idle streams until at most nine tenths of <see cref="FileStreamStoreOptions.MaxLoadedStreams"/> are
    /// loaded (or no more are idle); does nothing while the cap is not exceeded. Returns how many it unloaded. The sweep
    /// runs it in the background; tests call it directly.
    /// </summary>
    internal async Task<int> UnloadIdleAsync()
    {
        await _unloadGate.WaitAsync();
        try
        {
            return await UnloadIdleCoreAsync();
        }
        finally
        {
            _unloadGate.Release();
        }
    }

    /// <summary>Starts an unload pass in the background when the cap is exceeded and none is running (from the sweep).</summary>
    private void UnloadIdleInBackground()
    {
        if (_loaded.Count <= _options.MaxLoadedStreams || !_unloadGate.Wait(0))
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                await UnloadIdleCoreAsync();
            }
            catch (Exception ex) when (ex is not ObjectDisposedException)
            {
                LogBackgroundFailure(_logger, ex, "unloading idle streams");
            }
            catch (ObjectDisposedException)
            {
                // The store closed during the pass.
            }
            finally
            {
                _unloadGate.Release();
            }
        });
    }

    private async Task<int> UnloadIdleCoreAsync()
    {
        var cap = _options.MaxLoadedStreams;
        var wanted = _loaded.Count - (cap - cap / 10);
        if (_loaded.Count <= cap || wanted <= 0 || IsDisposed)
        {
            return 0;
        }
        // 1. Candidates, least recently used first, with what they were when picked.
        var candidates = new List<UnloadCandidate>();
        foreach (var stream in _loaded.Values)
        {
            lock (stream.Gate)
            {
                if (IsIdle(stream))
                {
                    candidates.Add(UnloadCandidate.Of(stream));
                }
            }
        }
        if (candidates.Count == 0)
        {
            return 0;
        }
        candidates.Sort(static (a, b) => a.AccessTicks.CompareTo(b.AccessTicks));
        if (candidates.Count > wanted)
        {
            candidates.RemoveRange(wanted, candidates.Count - wanted);
        }
        return await UnloadAsync(candidates);
    }

    /// <summary>Test hook: unloads the stream holding <paramref name="name"/> if it is loaded and idle, whatever the cap.</summary>
    internal async Task<bool> UnloadAsync(string name)
    {
        await _unloadGate.WaitAsync();
        try
        {
            if (!_streams.TryGetLoaded(name, out var stream))
            {
                return false;
            }
            lock (stream.Gate)
            {
                if (!IsIdle(stream))
                {
                    return false;
                }
            }
            return await UnloadAsync([UnloadCandidate.Of(stream)]) == 1;
        }
        finally
        {
            _unloadGate.Release();
        }
    }

    /// <summary>Unloads the candidates that are, after a checkpoint, still exactly as they were when picked.</summary>
    private async Task<int> UnloadAsync(List<UnloadCandidate> candidates)
    {
        // 2. Their commits all ended before this count was read; a checkpoint settling after it has put them in LMDB.
        var settled = _committer.SettledCount;
        try
        {
            await CheckpointAsync();
        }
        catch (Exception ex) when (ex is not ObjectDisposedException)
        {
            LogBackgroundFailure(_logger, ex, "checkpointing before unloading idle streams");
            return 0;
        }
        if (_committer.SettledCount <= settled)
        {
            return 0;
        }
        // 3. Unchanged since they were picked (any commit since replaces the last commit task or the state), so LMDB
        // holds everything they hold: dropped. The structure lock keeps creates, deletes and expiry out meanwhile.
        var unloaded = 0;
        DateTimeOffset? earliestExpiry = null;
        var now = _time.GetUtcNow();
        await _structure.WaitAsync();
        try
        {
            foreach (var candidate in candidates)
            {
                var stream = candidate.Stream;
                lock (stream.Gate)
                {
                    if (!IsIdle(stream)
                        || Volatile.Read(ref stream.LastAccessTicks) != candidate.AccessTicks
                        || stream.PersistedAccessTicks != candidate.PersistedAccessTicks
                        || !ReferenceEquals(stream.LastCommit, candidate.LastCommit)
                        || !ReferenceEquals(stream.Committed, candidate.Committed)
                        || !ReferenceEquals(stream.Meta, candidate.Meta))
                    {
                        continue;
                    }
                    stream.Unloaded = true;
                    CloseHandleLocked(stream);
                    _streams.TryUnload(stream);
                    _loaded.TryRemove(new KeyValuePair<long, DiskStream>(stream.Id, stream));
                    unloaded++;
                    if (stream.CanExpire && ExpiryOf(stream) is { } expiry && (earliestExpiry is null || expiry < earliestExpiry))
                    {
                        earliestExpiry = expiry < now ? now : expiry;
                    }
                }
            }
        }
        finally
        {
            _structure.Release();
        }
        if (earliestExpiry is { } earliest)
        {
            // The sweep reads LMDB's expiring index for streams not loaded only from its earliest expiry on.
            lock (_sweepGate)
            {
                if (earliest < _nextUnloadedExpiry)
                {
                    _nextUnloadedExpiry = earliest;
                }
            }
        }
        if (unloaded > 0)
        {
            Interlocked.Add(ref _unloadedTotal, unloaded);
            ForgetClosedHandles();
        }
        return unloaded;
    }

    /// <summary>True when nothing about the stream lives only in memory or is in flight; call under its gate.</summary>
    private static bool IsIdle(DiskStream stream) =>
        !stream.Unloaded && !stream.Removed && !stream.SoftDeleted && !stream.Corrupt && !stream.Compacting
        && stream.RefCount == 0
        && stream.Created.IsCompleted && stream.LastCommit.IsCompleted
        && stream.Pending.Tail == stream.Committed.Tail
        && stream.PendingRetainedStart == stream.RetainedStart
        && stream.PendingCompacted == stream.Compacted
        && stream.Signal.Idle
        && (stream.TtlSeconds is null || Volatile.Read(ref stream.LastAccessTicks) == stream.PersistedAccessTicks);

    /// <summary>When an idle stream expires, by its absolute expiry or its persisted access time plus its TTL.</summary>
    private static DateTimeOffset? ExpiryOf(DiskStream stream)
    {
        DateTimeOffset? byTtl = stream.TtlSeconds is { } ttl ? new DateTimeOffset(stream.PersistedAccessTicks, TimeSpan.Zero).AddSeconds(ttl) : null;
        return (byTtl, stream.ExpiresAt) switch
        {
            ({ } a, { } b) => a < b ? a : b,
            ({ } a, null) => a,
            (null, var b) => b,
        };
    }

    /// <summary>Drops the open-file queue's entries whose file is closed (unloaded streams), so it does not keep them in memory.</summary>
    private void ForgetClosedHandles()
    {
        var count = _openHandles.Count;
        for (var i = 0; i < count && _openHandles.TryDequeue(out var stream); i++)
        {
            if (stream.Handle is not null)
            {
                _openHandles.Enqueue(stream);
            }
        }
    }

    /// <summary>A stream picked for unloading and what it was when picked (taken under its gate).</summary>
    private readonly record struct UnloadCandidate(DiskStream Stream, long AccessTicks, long PersistedAccessTicks, Task LastCommit, Core.StreamState Committed, StreamMeta Meta)
    {
        public static UnloadCandidate Of(DiskStream stream) =>
            new(stream, Volatile.Read(ref stream.LastAccessTicks), stream.PersistedAccessTicks, stream.LastCommit, stream.Committed, stream.Meta);
    }
}
