using System.Collections.Concurrent;

namespace DurableStreams.Storage.File;

/// <summary>One unit of durable work: files to sync, metadata to write, and what to do once it is committed.</summary>
internal sealed class CommitWork
{
    /// <summary>Data files whose written bytes this work depends on (synced before the metadata commit).</summary>
    public List<DiskStream> SyncStreams { get; } = [];

    /// <summary>Sync the streams directory too (a file was created or removed).</summary>
    public bool SyncDirectory { get; init; }

    /// <summary>Checked on the commit thread just before applying; false fails the work without writing anything.</summary>
    public Func<bool>? IsValid { get; init; }

    /// <summary>Metadata changes, applied inside the batch's one LMDB write transaction.</summary>
    public required Action<MetadataStore.MetadataWriter> Apply { get; init; }

    /// <summary>Runs on the commit thread after the transaction committed (publish to readers, close files...).</summary>
    public Action? OnCommitted { get; init; }

    /// <summary>Runs on the commit thread when the batch failed (roll back in-memory state).</summary>
    public Action<Exception>? OnFailed { get; init; }

    public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Group commit: one dedicated thread takes every queued unit of work, syncs all the data files they touched (one
/// fdatasync per file, shared by every append that arrived meanwhile, across streams), then commits all their metadata
/// in one LMDB transaction, then publishes. Per-stream order is the queue order. No stream lock is held while it syncs.
/// </summary>
internal sealed class GroupCommitter : IDisposable
{
    private const int MaxBatch = 8192;

    private readonly MetadataStore _metadata;
    private readonly DurabilityMode _mode;
    private readonly TimeSpan _syncInterval;
    private readonly string _streamsDirectory;
    private readonly Action<Exception> _onBatchFailed;
    private readonly BlockingCollection<CommitWork> _queue = new(new ConcurrentQueue<CommitWork>());
    private readonly HashSet<DiskStream> _unsynced = [];
    private readonly Thread _thread;
    private long _lastIntervalSync;

    private readonly FileStoreFaults _faults;

    public GroupCommitter(MetadataStore metadata, DurabilityMode mode, TimeSpan syncInterval, string streamsDirectory, Action<Exception> onBatchFailed, FileStoreFaults faults)
    {
        _faults = faults;
        _metadata = metadata;
        _mode = mode;
        _syncInterval = syncInterval;
        _streamsDirectory = streamsDirectory;
        _onBatchFailed = onBatchFailed;
        _lastIntervalSync = Environment.TickCount64;
        _thread = new Thread(Run) { IsBackground = true, Name = "DurableStreams group commit" };
        _thread.Start();
    }

    /// <summary>Number of batches committed so far (for tests and metrics).</summary>
    public long BatchCount { get; private set; }

    /// <summary>Queues work; the returned task completes once it is durable per the mode, or faults.</summary>
    public Task Enqueue(CommitWork work)
    {
        try
        {
            _queue.Add(work);
        }
        catch (InvalidOperationException)
        {
            work.Completion.TrySetException(new ObjectDisposedException(nameof(GroupCommitter)));
        }
        return work.Completion.Task;
    }

    private void Run()
    {
        var batch = new List<CommitWork>();
        while (true)
        {
            batch.Clear();
            try
            {
                var timeout = _mode == DurabilityMode.Interval ? (int)Math.Max(1, _syncInterval.TotalMilliseconds) : Timeout.Infinite;
                if (_queue.TryTake(out var first, timeout))
                {
                    batch.Add(first);
                    while (batch.Count < MaxBatch && _queue.TryTake(out var more))
                    {
                        batch.Add(more);
                    }
                }
                else if (_queue.IsCompleted)
                {
                    SyncInterval(force: true);
                    return;
                }
            }
            catch (InvalidOperationException)
            {
                SyncInterval(force: true);
                return;
            }
            if (batch.Count > 0)
            {
                Commit(batch);
            }
            if (_mode == DurabilityMode.Interval)
            {
                SyncInterval(force: false);
            }
        }
    }

    private void Commit(List<CommitWork> batch)
    {
        var valid = new List<CommitWork>(batch.Count);
        foreach (var work in batch)
        {
            if (work.IsValid is null || work.IsValid())
            {
                valid.Add(work);
            }
            else
            {
                work.Completion.TrySetException(new IOException("An earlier write to this stream failed; this one was rolled back."));
            }
        }
        try
        {
            if (_faults.BeforeSync?.Invoke() is { } injected)
            {
                throw injected;
            }
            if (_mode == DurabilityMode.Always)
            {
                SyncFiles(valid.SelectMany(w => w.SyncStreams).Distinct());
                if (valid.Any(w => w.SyncDirectory))
                {
                    NativeIo.SyncDirectory(_streamsDirectory);
                }
            }
            else if (_mode == DurabilityMode.Interval)
            {
                foreach (var stream in valid.SelectMany(w => w.SyncStreams))
                {
                    _unsynced.Add(stream);
                }
            }
            _metadata.Write(writer =>
            {
                foreach (var work in valid)
                {
                    work.Apply(writer);
                }
            });
            BatchCount++;
        }
        catch (Exception ex)
        {
            _onBatchFailed(ex);
            foreach (var work in valid)
            {
                try
                {
                    work.OnFailed?.Invoke(ex);
                }
                finally
                {
                    work.Completion.TrySetException(ex);
                }
            }
            return;
        }
        foreach (var work in valid)
        {
            try
            {
                work.OnCommitted?.Invoke();
                work.Completion.TrySetResult();
            }
            catch (Exception ex)
            {
                work.Completion.TrySetException(ex);
            }
        }
    }

    private static void SyncFiles(IEnumerable<DiskStream> streams)
    {
        var handles = new List<Microsoft.Win32.SafeHandles.SafeFileHandle>();
        foreach (var stream in streams)
        {
            if (stream.Handle is { IsClosed: false } handle)
            {
                handles.Add(handle);
            }
        }
        if (handles.Count == 1)
        {
            NativeIo.SyncData(handles[0]);
        }
        else if (handles.Count > 1)
        {
            // Syncs of different files overlap in the kernel's journal; issuing them together shares commits.
            Parallel.ForEach(handles, new ParallelOptions { MaxDegreeOfParallelism = 16 }, NativeIo.SyncData);
        }
    }

    private void SyncInterval(bool force)
    {
        if (_mode != DurabilityMode.Interval || (!force && Environment.TickCount64 - _lastIntervalSync < _syncInterval.TotalMilliseconds))
        {
            return;
        }
        _lastIntervalSync = Environment.TickCount64;
        try
        {
            SyncFiles(_unsynced);
            _unsynced.Clear();
            NativeIo.SyncDirectory(_streamsDirectory);
            _metadata.Flush();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            _onBatchFailed(ex);
        }
    }

    /// <summary>Stops taking work, finishes what is queued, and waits for the thread.</summary>
    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
    }
}
