using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.File;

/// <summary>
/// The commit log (<c>commit.log</c>): the one file a group commit syncs. Each batch appends one record
/// <c>[magic u32][length u32][crc32c u32][payload]</c> whose payload (<see cref="CommitOps"/>) holds the batch's data
/// bytes and metadata changes. Checkpoints apply the logged changes to LMDB, sync the data files, and empty the log;
/// recovery replays whatever the log still holds. A torn or damaged record ends the log: it was never acknowledged.
/// </summary>
internal sealed class CommitLog : IDisposable
{
    private const uint Magic = 0x474C5344; // "DSLG"
    private const int HeaderBytes = 12;

    private readonly SafeFileHandle _handle;

    public CommitLog(string path)
    {
        Path = path;
        _handle = System.IO.File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        Length = RandomAccess.GetLength(_handle);
    }

    public string Path { get; }

    /// <summary>Bytes in the log (valid records plus, right after a crash, possibly a torn tail).</summary>
    public long Length { get; private set; }

    /// <summary>Appends one record (not yet durable; call <see cref="Sync"/>).</summary>
    public void Append(ReadOnlyMemory<byte> payload)
    {
        var header = new byte[HeaderBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), Crc32C.Compute(payload.Span));
        // One gathered write (pwritev): the payload is not copied into a record buffer.
        RandomAccess.Write(_handle, [header, payload], Length);
        Length += HeaderBytes + payload.Length;
    }

    public void Sync() => NativeIo.SyncData(_handle);

    /// <summary>Cuts the log back (after a failed batch, or to empty it after a checkpoint) and syncs the cut.</summary>
    public void TruncateTo(long length)
    {
        RandomAccess.SetLength(_handle, length);
        Length = length;
        NativeIo.SyncData(_handle);
    }

    /// <summary>The payloads of every intact record from the start, stopping at the first torn or damaged one.</summary>
    public List<byte[]> ReadRecords()
    {
        var records = new List<byte[]>();
        var header = new byte[HeaderBytes];
        long position = 0;
        while (position + HeaderBytes <= Length)
        {
            if (RandomAccess.Read(_handle, header, position) != HeaderBytes
                || BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
            {
                break;
            }
            var length = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
            if (length < 0 || position + HeaderBytes + length > Length)
            {
                break;
            }
            var payload = new byte[length];
            if (RandomAccess.Read(_handle, payload, position + HeaderBytes) != length || Crc32C.Compute(payload) != crc)
            {
                break;
            }
            records.Add(payload);
            position += HeaderBytes + length;
        }
        return records;
    }

    public void Dispose() => _handle.Dispose();
}
