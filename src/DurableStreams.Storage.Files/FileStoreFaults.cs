namespace DurableStreams.Storage.Files;

/// <summary>
/// Test hooks that make the store's own I/O fail the way a full disk or a broken device does, so fault handling is
/// tested deterministically on any machine. Null (the default) means no injected faults.
/// </summary>
internal sealed class FileStoreFaults
{
    /// <summary>Called before each data write; a returned exception is thrown as if the write failed.</summary>
    public Func<Exception?>? BeforeWrite { get; set; }

    /// <summary>Called before each batch's syncs; a returned exception is thrown as if fdatasync failed.</summary>
    public Func<Exception?>? BeforeSync { get; set; }

    /// <summary>
    /// Skip checkpoints (including the one on dispose), so a test can stop the store the way a crash would: with the
    /// commit log holding changes LMDB has not seen.
    /// </summary>
    public bool SuppressCheckpoints { get; set; }

    /// <summary>Called by a read after it chose its frames and left the stream's lock, before it reads them (to race retention).</summary>
    public Action? BeforeCopy { get; set; }

    /// <summary>Called with the stream positions [from, to) a read asks the kernel to read ahead (<see cref="NativeIo.WillNeed"/>).</summary>
    public Action<long, long>? ReadAhead { get; set; }

    /// <summary>Retention persists and publishes the new start but frees nothing, as a crash right after the commit would.</summary>
    public bool SkipFree { get; set; }

    /// <summary>Called before a compaction writes its snapshot file (to fail it, or to stop the process there).</summary>
    public Action? BeforeSnapshotWrite { get; set; }

    /// <summary>Called by a request's lookup after it found the stream, before it uses it (to race an unload).</summary>
    public Action<string>? AfterLookup { get; set; }

    /// <summary>The ENOSPC error a full disk gives.</summary>
    public static IOException DiskFull() => new("No space left on device", 28);
}
