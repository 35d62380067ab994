using System.Runtime.InteropServices;
using LightningDB;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>Native pieces: the LMDB library resolver and the sync calls .NET does not expose.</summary>
internal static partial class NativeIo
{
    private static int s_registered;

    /// <summary>
    /// Loads the liblmdb.so built from source next to this assembly (the package's linux-x64 build needs glibc 2.38).
    /// Falls back to the default probing elsewhere. Idempotent.
    /// </summary>
    public static void RegisterLmdbResolver()
    {
        if (Interlocked.Exchange(ref s_registered, 1) == 1)
        {
            return;
        }
        NativeLibrary.SetDllImportResolver(typeof(LightningEnvironment).Assembly, static (name, _, _) =>
        {
            if (name != "lmdb" || !OperatingSystem.IsLinux())
            {
                return IntPtr.Zero;
            }
            var local = Path.Combine(AppContext.BaseDirectory, "liblmdb.so");
            var beside = Path.Combine(Path.GetDirectoryName(typeof(NativeIo).Assembly.Location) ?? AppContext.BaseDirectory, "liblmdb.so");
            foreach (var candidate in new[] { beside, local })
            {
                if (System.IO.File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out var handle))
                {
                    return handle;
                }
            }
            return IntPtr.Zero;
        });
    }

    /// <summary>Makes a file's data durable (fdatasync on Linux, fsync elsewhere).</summary>
    public static void SyncData(SafeFileHandle handle)
    {
        if (OperatingSystem.IsLinux())
        {
            var added = false;
            handle.DangerousAddRef(ref added);
            try
            {
                if (fdatasync((int)handle.DangerousGetHandle()) != 0)
                {
                    throw new IOException($"fdatasync failed (errno {Marshal.GetLastPInvokeError()}).");
                }
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
            return;
        }
        using var stream = new System.IO.FileStream(handle, FileAccess.ReadWrite, 0);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Makes a directory's entries durable, so a newly created or deleted file survives a power cut.</summary>
    public static void SyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var fd = open(path, 0 /* O_RDONLY */ | 0x10000 /* O_DIRECTORY */);
        if (fd < 0)
        {
            throw new IOException($"Could not open directory '{path}' to sync it (errno {Marshal.GetLastPInvokeError()}).");
        }
        try
        {
            if (fsync(fd) != 0)
            {
                throw new IOException($"fsync of directory '{path}' failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>
    /// True when the exception means the disk (or the metadata map) is full: ENOSPC or EDQUOT from a file write, or
    /// LMDB's ENOSPC / MDB_MAP_FULL.
    /// </summary>
    public static bool IsDiskFull(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is LightningException lmdb && (lmdb.StatusCode is 28 or 122 or -30792 || Mentions(lmdb.Message)))
            {
                return true;
            }
            if (e is IOException io && (io.HResult is 28 or 122 || (io.HResult & 0xFFFF) is 28 or 122 || Mentions(io.Message)))
            {
                return true;
            }
        }
        return false;

        static bool Mentions(string message) =>
            message.Contains("No space left", StringComparison.OrdinalIgnoreCase)
            || message.Contains("Disk quota", StringComparison.OrdinalIgnoreCase)
            || message.Contains("MDB_MAP_FULL", StringComparison.Ordinal);
    }

    /// <summary>
    /// Releases the storage of [<paramref name="offset"/>, offset + <paramref name="length"/>) of a file without changing
    /// its size (fallocate PUNCH_HOLE | KEEP_SIZE): the range then reads as zeros. Returns false where that is not
    /// supported (not Linux, or a file system without it); throws for other errors.
    /// </summary>
    public static bool PunchHole(SafeFileHandle handle, long offset, long length)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (fallocate((int)handle.DangerousGetHandle(), FallocPunchHole | FallocKeepSize, offset, length) == 0)
            {
                return true;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno is EOPNOTSUPP or ENOSYS)
            {
                return false;
            }
            throw new IOException($"fallocate(PUNCH_HOLE) failed (errno {errno}).", errno);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Bytes of a file that hold data (what <c>du</c> counts, to a block): the sum of its data extents found with
    /// lseek SEEK_DATA / SEEK_HOLE. Linux only; elsewhere the file's length.
    /// </summary>
    public static long DataBytes(SafeFileHandle handle)
    {
        var length = RandomAccess.GetLength(handle);
        if (!OperatingSystem.IsLinux())
        {
            return length;
        }
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var fd = (int)handle.DangerousGetHandle();
            var total = 0L;
            var position = 0L;
            while (position < length)
            {
                var data = lseek(fd, position, SeekData);
                if (data < 0)
                {
                    break; // ENXIO: no data past position
                }
                var hole = lseek(fd, data, SeekHole);
                if (hole < 0)
                {
                    hole = length;
                }
                total += hole - data;
                position = hole;
            }
            return total;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Where a file's first data (not a hole) starts: lseek SEEK_DATA from 0. The file's length when it is all holes;
    /// 0 where that cannot be asked (not Linux, or a file system without it), so callers then assume data from the start.
    /// </summary>
    public static long FirstDataOffset(SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux())
        {
            return 0;
        }
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var data = lseek((int)handle.DangerousGetHandle(), 0, SeekData);
            return data >= 0 ? data : Marshal.GetLastPInvokeError() == ENXIO ? RandomAccess.GetLength(handle) : 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Asks the kernel to start reading [<paramref name="offset"/>, offset + <paramref name="length"/>) of a file into
    /// the page cache (posix_fadvise WILLNEED) and returns without waiting for it: a catch-up read's next pieces then
    /// come from the disk while the current one is being sent. Advice only: a failure, or a system without it, changes
    /// nothing but speed, so it is ignored. Costs page cache, never process memory.
    /// </summary>
    public static void WillNeed(SafeFileHandle handle, long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0)
        {
            return;
        }
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            _ = posix_fadvise((int)handle.DangerousGetHandle(), offset, length, FadvWillNeed);
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private const int FadvWillNeed = 3;
    private const int ENXIO = 6;
    private const int FallocKeepSize = 1;
    private const int FallocPunchHole = 2;
    private const int EOPNOTSUPP = 95;
    private const int ENOSYS = 38;
    private const int SeekData = 3;
    private const int SeekHole = 4;

    /// <summary>A mapping of a file in this process's address space.</summary>
    internal readonly record struct Mapping(nint Start, nint Length);

    /// <summary>
    /// The read-only shared mapping of <paramref name="path"/> in this process (<c>/proc/self/maps</c>, the file's
    /// canonical path, protection <c>r--s</c>), or null when there is none, it is writable, or this is not Linux.
    /// </summary>
    public static Mapping? FindReadOnlySharedMapping(string path)
    {
        if (!OperatingSystem.IsLinux() || RealPath(path) is not { } canonical)
        {
            return null;
        }
        Mapping? found = null;
        foreach (var line in System.IO.File.ReadLines("/proc/self/maps"))
        {
            // start-end perms offset dev inode path
            var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 6 || parts[5].TrimStart(' ') != canonical)
            {
                continue;
            }
            var range = parts[0].Split('-');
            var start = nint.Parse(range[0], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
            var end = nint.Parse(range[1], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
            if (parts[1] != "r--s" || found is not null)
            {
                // Writable, private, or mapped twice: not the one read-only map LMDB makes; leave it alone.
                return null;
            }
            found = new Mapping(start, end - start);
        }
        return found;
    }

    /// <summary>Drops the mapping's resident pages (<c>madvise(MADV_DONTNEED)</c>); for read-only shared file mappings only.</summary>
    public static bool DropResidentPages(Mapping mapping) => madvise(mapping.Start, (nuint)mapping.Length, MadvDontNeed) == 0;

    private static unsafe string? RealPath(string path)
    {
        var resolved = stackalloc byte[4096];
        return realpath(path, resolved) == 0 ? null : Marshal.PtrToStringUTF8((nint)resolved);
    }

    private const int MadvDontNeed = 4;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint address, nuint length, int advice);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint realpath(string path, byte* resolved);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(int fd, int mode, long offset, long length);

    /// <summary>Returns the error number itself (0 on success); errno is not set.</summary>
    [LibraryImport("libc")]
    private static partial int posix_fadvise(int fd, long offset, long length, int advice);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long lseek(int fd, long offset, int whence);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
