using System.Text.Json;
using DurableStreams.Storage.File;

namespace DurableStreams.Subscriptions;

/// <summary>
/// Subscription state in one JSON file (<c>subscriptions.json</c> in the file store's data directory). Every change
/// rewrites the whole file atomically: write a temp file, fsync it, rename it over the old one, fsync the directory.
/// A crash leaves the old or the new file, never a mix. Subscription state is small and changes per wake, not per
/// append, so a whole-file rewrite costs little and keeps this state out of the streams' LMDB commit path.
/// </summary>
public sealed class FileSubscriptionStateStore : MemorySubscriptionStateStore
{
    /// <summary>The file name inside the data directory.</summary>
    public const string FileName = "subscriptions.json";

    private readonly string _directory;
    private readonly string _path;
    private readonly string _tempPath;

    private FileSubscriptionStateStore(string directory)
    {
        _directory = directory;
        _path = Path.Combine(directory, FileName);
        _tempPath = _path + ".tmp";
    }

    /// <summary>The file's full path.</summary>
    public string FilePath => _path;

    /// <summary>
    /// Opens the state in <paramref name="directory"/> (created if missing). The caller guarantees a single process uses
    /// the directory (the file store's directory lock does). Throws <see cref="InvalidOperationException"/> when the
    /// file is not valid subscription state (it is never overwritten then), and I/O exceptions.
    /// </summary>
    public static FileSubscriptionStateStore Open(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var store = new FileSubscriptionStateStore(Path.GetFullPath(directory));
        if (File.Exists(store._tempPath))
        {
            // A write that never got renamed: the previous file is the committed state.
            File.Delete(store._tempPath);
        }
        if (File.Exists(store._path))
        {
            SubscriptionStateSnapshot? snapshot;
            try
            {
                snapshot = JsonSerializer.Deserialize<SubscriptionStateSnapshot>(File.ReadAllBytes(store._path), SubscriptionJson.Options);
            }
            catch (JsonException ex)
            {
                throw new InvalidOperationException($"'{store._path}' is not valid subscription state: {ex.Message}", ex);
            }
            store.Restore(snapshot ?? throw new InvalidOperationException($"'{store._path}' holds no subscription state."));
        }
        return store;
    }

    private protected override ValueTask Persist()
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(BuildSnapshot(), SubscriptionJson.Options);
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            // The file holds the private signing key: owner read/write only.
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var file = new FileStream(_tempPath, options))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: false);
            NativeIo.SyncData(file.SafeFileHandle);
        }
        File.Move(_tempPath, _path, overwrite: true);
        NativeIo.SyncDirectory(_directory);
        return ValueTask.CompletedTask;
    }
}
