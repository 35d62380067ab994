using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>
/// The data directory is private to the server's user: directories 0700, files 0600, whatever the umask. New ones are
/// created so; existing ones with looser modes (from an older version or a copy) are tightened when the store opens.
/// Nothing happens on Windows, where the directory inherits its parent's ACL.
/// </summary>
internal static class PrivateFiles
{
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>The mode LMDB creates data.mdb and lock.mdb with.</summary>
    public const LightningDB.UnixAccessMode LmdbMode = LightningDB.UnixAccessMode.OwnerRead | LightningDB.UnixAccessMode.OwnerWrite;

    /// <summary>Creates <paramref name="path"/> (and missing parents) 0700, or tightens it; returns the old mode when it was looser.</summary>
    public static UnixFileMode? CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return null;
        }
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, DirectoryMode);
            return null;
        }
        return Restrict(path, DirectoryMode);
    }

    /// <summary>Sets <paramref name="path"/> to <paramref name="mode"/> when it grants more; returns the old mode then.</summary>
    public static UnixFileMode? Restrict(string path, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }
        var current = System.IO.File.GetUnixFileMode(path);
        if ((current & ~mode) == 0)
        {
            return null;
        }
        System.IO.File.SetUnixFileMode(path, current & mode);
        return current;
    }

    /// <summary>Makes a file this store just created (or may have) private, through its handle.</summary>
    public static void Restrict(SafeFileHandle handle)
    {
        if (!OperatingSystem.IsWindows())
        {
            System.IO.File.SetUnixFileMode(handle, FileMode);
        }
    }

    /// <summary>Options that open (or create, 0600) a file.</summary>
    public static FileStreamOptions Options(System.IO.FileMode mode, FileAccess access, FileShare share)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }
        return options;
    }
}
