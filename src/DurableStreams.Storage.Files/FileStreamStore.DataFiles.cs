using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>The open-file cache: each stream's data file opened on first use, idle ones closed past <c>MaxOpenFiles</c>.</summary>
public sealed partial class FileStreamStore
{
    /// <summary>
    /// The stream's data file, opened on first use; called under the stream's gate. The file is created only by the
    /// first write of a stream with no data yet (<paramref name="created"/> then tells the caller to sync the directory);
    /// a missing file under existing data means outside damage, never an empty stream.
    /// </summary>
    private SafeFileHandle HandleOf(DiskStream stream, out bool created)
    {
        created = false;
        if (stream.Handle is { IsClosed: false } handle)
        {
            return handle;
        }
        if (stream.Removed && !stream.Meta.Detached)
        {
            throw new ObjectDisposedException(stream.Name, "The stream was removed.");
        }
        var mayCreate = stream.Pending.Tail == stream.BasePosition;
        if (mayCreate && stream.Unloaded)
        {
            // An entry unloaded under a reader may reopen its file to read committed bytes, but never as "no data yet":
            // its view of the tail is stale, and the name's current entry may have written the file since.
            throw new ObjectDisposedException(stream.Name, "The stream was unloaded.");
        }
        if (mayCreate && !System.IO.File.Exists(stream.FilePath))
        {
            created = true;
        }
        stream.Handle = System.IO.File.OpenHandle(stream.FilePath, mayCreate ? FileMode.OpenOrCreate : FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (created)
        {
            // Inside the 0700 streams directory already; 0600 as well, whatever the umask.
            PrivateFiles.Restrict(stream.Handle);
        }
        else if (mayCreate && RandomAccess.GetLength(stream.Handle) > 0)
        {
            // No byte of a stream without data is valid: this is a file a PUT wrote before a crash lost its commit
            // (open no longer lists the streams directory to remove such files), now reused by the same id.
            RandomAccess.SetLength(stream.Handle, 0);
        }
        _openHandles.Enqueue(stream);
        if (Interlocked.Increment(ref _openHandleCount) > _options.MaxOpenFiles)
        {
            TrimHandles(stream);
        }
        return stream.Handle;
    }

    private SafeFileHandle HandleOf(DiskStream stream) => HandleOf(stream, out _);

    /// <summary>
    /// Closes the least recently opened idle data files until under the limit. Idle means no commit in flight, so
    /// the group committer never syncs a closed handle; a read holding a reference keeps the file open until it ends.
    /// Other streams' gates are only tried, never waited for, so two trimmers cannot deadlock.
    /// </summary>
    private void TrimHandles(DiskStream keep)
    {
        var attempts = _openHandles.Count;
        while (Volatile.Read(ref _openHandleCount) > _options.MaxOpenFiles && attempts-- > 0 && _openHandles.TryDequeue(out var candidate))
        {
            if (candidate == keep || !Monitor.TryEnter(candidate.Gate))
            {
                _openHandles.Enqueue(candidate);
                continue;
            }
            try
            {
                if (candidate.Handle is null)
                {
                    continue;
                }
                if (!candidate.LastCommit.IsCompleted)
                {
                    _openHandles.Enqueue(candidate);
                    continue;
                }
                CloseHandleLocked(candidate);
            }
            finally
            {
                Monitor.Exit(candidate.Gate);
            }
        }
    }

    /// <summary>Closes a stream's data file; call under its gate.</summary>
    private void CloseHandleLocked(DiskStream stream)
    {
        if (stream.Handle is { } handle)
        {
            handle.Dispose();
            stream.Handle = null;
            Interlocked.Decrement(ref _openHandleCount);
        }
    }

    private void DeleteFile(DiskStream stream)
    {
        lock (stream.Gate)
        {
            CloseHandleLocked(stream);
        }
        try
        {
            System.IO.File.Delete(stream.FilePath);
        }
        catch (IOException ex)
        {
            LogBackgroundFailure(_logger, ex, "deleting " + stream.FilePath);
        }
        DeleteSnapshots(stream);
    }
}
