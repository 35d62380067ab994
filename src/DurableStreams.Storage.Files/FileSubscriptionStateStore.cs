using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using DurableStreams.Core.Subscriptions;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>
/// Subscription state in the file store's data directory: a snapshot (<c>subscriptions.json</c>) plus a journal of the
/// changes since (<c>subscriptions.journal</c>), so a change costs one appended record and one fdatasync, not a rewrite
/// of every subscription.
/// <para>
/// The journal starts with an 8-byte header (<c>"DSSJ"</c>, version 1, little-endian u32s); each record is
/// <c>[payload length u32][crc32c u32][op u8][payload]</c>, the CRC covering the length, op and payload. Ops: 1 saves a
/// subscription (payload: its JSON), 2 deletes one (payload: the id in UTF-8), 3 replaces the signing keys (payload:
/// their JSON array). Opening replays the records over the snapshot and cuts the journal at the first incomplete or
/// damaged record (a torn tail from a crash: that change was never acknowledged).
/// </para>
/// <para>
/// When the journal outgrows twice the snapshot (and at least <c>minimumCompactionBytes</c>) it is compacted: the whole
/// state is written to <c>subscriptions.json.tmp</c>, synced and renamed over the snapshot, then an empty journal is
/// written, synced and renamed over the old one, syncing the directory after each rename. A crash between the two
/// renames leaves the new snapshot with the old journal, whose replay changes nothing (every record it holds is already
/// in the snapshot, and the last record per subscription wins). A directory with only a <c>subscriptions.json</c> (the
/// format before the journal) opens as a snapshot with an empty journal. Both files hold the private signing key and are
/// made owner read/write only (0600) regardless of umask; leftover <c>.tmp</c> files are deleted on open.
/// </para>
/// </summary>
public sealed class FileSubscriptionStateStore : MemorySubscriptionStateStore
{
    /// <summary>The snapshot's file name inside the data directory.</summary>
    public const string FileName = "subscriptions.json";

    /// <summary>The journal's file name inside the data directory.</summary>
    public const string JournalFileName = "subscriptions.journal";

    /// <summary>The journal size below which it is never compacted.</summary>
    internal const long DefaultMinimumCompactionBytes = 1L << 20;

    private const uint JournalMagic = 0x4A535344; // "DSSJ"
    private const uint JournalVersion = 1;
    private const int FileHeaderBytes = 8;
    private const int RecordHeaderBytes = 9;
    private const byte OpSave = 1;
    private const byte OpDelete = 2;
    private const byte OpKeys = 3;

    private readonly string _directory;
    private readonly string _path;
    private readonly string _tempPath;
    private readonly string _journalPath;
    private readonly string _journalTempPath;
    private readonly long _minimumCompactionBytes;
    private SafeFileHandle? _journal;
    private long _journalLength;
    private long _snapshotLength;
    private long _compactAt;

    private FileSubscriptionStateStore(string directory, long minimumCompactionBytes)
    {
        _directory = directory;
        _path = Path.Combine(directory, FileName);
        _tempPath = _path + ".tmp";
        _journalPath = Path.Combine(directory, JournalFileName);
        _journalTempPath = _journalPath + ".tmp";
        _minimumCompactionBytes = minimumCompactionBytes;
    }

    /// <summary>The snapshot's full path.</summary>
    public string FilePath => _path;

    /// <summary>The journal's full path.</summary>
    public string JournalPath => _journalPath;

    /// <summary>
    /// Opens the state in <paramref name="directory"/> (created if missing). The caller guarantees a single process uses
    /// the directory (the file store's directory lock does). Throws <see cref="InvalidOperationException"/> when the
    /// files are not valid subscription state (they are never overwritten then), and I/O exceptions.
    /// </summary>
    public static FileSubscriptionStateStore Open(string directory) => Open(directory, DefaultMinimumCompactionBytes);

    /// <summary><see cref="Open(string)"/> with the journal size below which it is never compacted (tests use a small one).</summary>
    internal static FileSubscriptionStateStore Open(string directory, long minimumCompactionBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var store = new FileSubscriptionStateStore(Path.GetFullPath(directory), minimumCompactionBytes);
        try
        {
            store.Load();
        }
        catch
        {
            store._journal?.Dispose();
            throw;
        }
        return store;
    }

    private void Load()
    {
        // Writes that never got renamed: the files they were meant to replace are the committed state.
        DeleteIfExists(_tempPath);
        DeleteIfExists(_journalTempPath);
        if (File.Exists(_path))
        {
            MakePrivate(_path);
            var bytes = File.ReadAllBytes(_path);
            SubscriptionStateSnapshot? snapshot;
            try
            {
                snapshot = JsonSerializer.Deserialize<SubscriptionStateSnapshot>(bytes, SubscriptionJson.Options);
            }
            catch (JsonException ex)
            {
                throw new InvalidOperationException($"'{_path}' is not valid subscription state: {ex.Message}", ex);
            }
            Restore(snapshot ?? throw new InvalidOperationException($"'{_path}' holds no subscription state."));
            _snapshotLength = bytes.Length;
        }
        if (File.Exists(_journalPath))
        {
            MakePrivate(_journalPath);
            _journal = File.OpenHandle(_journalPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            Replay();
        }
        else
        {
            _journal = CreateJournal();
        }
        _compactAt = CompactionThreshold();
    }

    /// <summary>Applies the journal's records and cuts it after the last whole one.</summary>
    private void Replay()
    {
        var length = RandomAccess.GetLength(_journal!);
        if (length < FileHeaderBytes)
        {
            // Never a committed state (the journal is created whole by rename), but a damaged one has no records to lose.
            RandomAccess.Write(_journal!, JournalHeader(), 0);
            RandomAccess.SetLength(_journal!, FileHeaderBytes);
            NativeIo.SyncData(_journal!);
            _journalLength = FileHeaderBytes;
            return;
        }
        var bytes = new byte[length];
        RandomAccess.Read(_journal!, bytes, 0);
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != JournalMagic || BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)) != JournalVersion)
        {
            throw new InvalidOperationException($"'{_journalPath}' is not a subscription journal (version {JournalVersion}).");
        }
        var position = FileHeaderBytes;
        while (TryReadRecord(bytes.AsSpan(position), out var op, out var payload, out var recordLength))
        {
            Apply(op, payload);
            position += recordLength;
        }
        _journalLength = position;
        if (position < length)
        {
            // A torn or damaged tail: that change was never acknowledged. Cut it so new records follow the last whole one.
            RandomAccess.SetLength(_journal!, position);
            NativeIo.SyncData(_journal!);
        }
    }

    private static bool TryReadRecord(ReadOnlySpan<byte> data, out byte op, out ReadOnlySpan<byte> payload, out int recordLength)
    {
        op = 0;
        payload = default;
        recordLength = 0;
        if (data.Length < RecordHeaderBytes)
        {
            return false;
        }
        var payloadLength = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (payloadLength > (uint)(data.Length - RecordHeaderBytes))
        {
            return false;
        }
        var crc = Crc32C.Extend(Crc32C.Compute(data[..4]), data.Slice(8, 1 + (int)payloadLength));
        if (crc != BinaryPrimitives.ReadUInt32LittleEndian(data[4..]))
        {
            return false;
        }
        op = data[8];
        payload = data.Slice(RecordHeaderBytes, (int)payloadLength);
        recordLength = RecordHeaderBytes + (int)payloadLength;
        return op is OpSave or OpDelete or OpKeys;
    }

    private void Apply(byte op, ReadOnlySpan<byte> payload)
    {
        try
        {
            switch (op)
            {
                case OpSave:
                    RestoreSave(JsonSerializer.Deserialize<SubscriptionState>(payload, SubscriptionJson.Options)
                        ?? throw new JsonException("A saved subscription is null."));
                    break;
                case OpDelete:
                    RestoreDelete(Encoding.UTF8.GetString(payload));
                    break;
                default:
                    RestoreKeys(JsonSerializer.Deserialize<List<SigningKeyState>>(payload, SubscriptionJson.Options)
                        ?? throw new JsonException("The signing keys are null."));
                    break;
            }
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"'{_journalPath}' holds a record that is not valid subscription state: {ex.Message}", ex);
        }
    }

    private protected override ValueTask PersistSave(byte[] subscription)
    {
        Append(OpSave, subscription);
        return ValueTask.CompletedTask;
    }

    private protected override ValueTask PersistDelete(string id)
    {
        Append(OpDelete, Encoding.UTF8.GetBytes(id));
        return ValueTask.CompletedTask;
    }

    private protected override ValueTask PersistKeys(byte[] keys)
    {
        Append(OpKeys, keys);
        return ValueTask.CompletedTask;
    }

    /// <summary>Appends one record and syncs it (under the base class's lock); compacts when the journal has grown enough.</summary>
    private void Append(byte op, ReadOnlySpan<byte> payload)
    {
        var journal = _journal ?? throw new ObjectDisposedException(nameof(FileSubscriptionStateStore));
        var record = new byte[RecordHeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)payload.Length);
        record[8] = op;
        payload.CopyTo(record.AsSpan(RecordHeaderBytes));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), Crc32C.Extend(Crc32C.Compute(record.AsSpan(0, 4)), record.AsSpan(8)));
        RandomAccess.Write(journal, record, _journalLength);
        NativeIo.SyncData(journal);
        _journalLength += record.Length;
        if (_journalLength >= _compactAt)
        {
            Compact();
        }
    }

    /// <summary>Writes the whole state as the snapshot and starts an empty journal (see the class remarks for the order).</summary>
    private void Compact()
    {
        try
        {
            using (var file = new FileStream(_tempPath, PrivateCreate()))
            {
                MakePrivate(_tempPath);
                using (var writer = new Utf8JsonWriter(file))
                {
                    WriteSnapshot(writer);
                }
                file.Flush(flushToDisk: false);
                NativeIo.SyncData(file.SafeFileHandle);
                _snapshotLength = file.Length;
            }
            File.Move(_tempPath, _path, overwrite: true);
            NativeIo.SyncDirectory(_directory);
            var journal = CreateJournal();
            _journal?.Dispose();
            _journal = journal;
            _compactAt = CompactionThreshold();
        }
        catch (IOException)
        {
            // The change itself is already durable in the journal; try again after the journal grew as much once more.
            DeleteIfExists(_tempPath);
            _compactAt = _journalLength + CompactionThreshold();
        }
    }

    /// <summary>A new journal holding only its header, renamed into place; returns its handle.</summary>
    private SafeFileHandle CreateJournal()
    {
        using (var file = new FileStream(_journalTempPath, PrivateCreate()))
        {
            MakePrivate(_journalTempPath);
            file.Write(JournalHeader());
            file.Flush(flushToDisk: false);
            NativeIo.SyncData(file.SafeFileHandle);
        }
        File.Move(_journalTempPath, _journalPath, overwrite: true);
        NativeIo.SyncDirectory(_directory);
        _journalLength = FileHeaderBytes;
        return File.OpenHandle(_journalPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
    }

    private long CompactionThreshold() => Math.Max(_minimumCompactionBytes, 2 * _snapshotLength) + FileHeaderBytes;

    private static byte[] JournalHeader()
    {
        var header = new byte[FileHeaderBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(header, JournalMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), JournalVersion);
        return header;
    }

    private const UnixFileMode PrivateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static FileStreamOptions PrivateCreate()
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateMode;
        }
        return options;
    }

    /// <summary>Owner read/write only: the files hold the private signing key (and umask must not widen or narrow that).</summary>
    private static void MakePrivate(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, PrivateMode);
        }
    }

    private static void DeleteIfExists(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <inheritdoc/>
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _journal?.Dispose();
        _journal = null;
    }
}
