using DurableStreams.Core;
using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace DurableStreams.Storage.Files;

/// <summary>
/// Records the changes of a batch — data writes and metadata puts/deletes — as one commit-log payload. The same
/// payload is later applied to LMDB by a checkpoint or by recovery (<see cref="ApplyTo"/>), so a commit and its replay
/// go through one code path. Every operation is idempotent: replaying a payload twice gives the same state.
/// </summary>
internal sealed class CommitOps
{
    private enum Op : byte
    {
        Data = 1,
        PutName = 2,
        DeleteName = 3,
        PutMeta = 4,
        PutState = 5,
        PutFrame = 6,
        PutAccess = 7,
        DeleteStream = 8,
        PutProducer = 9,
        DeleteProducer = 10,
        PutTime = 11,
        DropBelow = 12,
    }

    private readonly ArrayBufferWriter<byte> _buffer = new();

    public bool IsEmpty => _buffer.WrittenCount == 0;

    public ReadOnlyMemory<byte> Payload => _buffer.WrittenMemory;

    /// <summary>Bytes written at <paramref name="filePosition"/> of stream <paramref name="id"/>'s data file.</summary>
    public void Data(long id, long filePosition, ReadOnlySpan<byte> bytes)
    {
        WriteOp(Op.Data);
        WriteLong(id);
        WriteLong(filePosition);
        WriteBytes(bytes);
    }

    public void PutName(string name, long id)
    {
        WriteOp(Op.PutName);
        WriteBytes(Encoding.UTF8.GetBytes(name));
        WriteLong(id);
    }

    public void DeleteName(string name)
    {
        WriteOp(Op.DeleteName);
        WriteBytes(Encoding.UTF8.GetBytes(name));
    }

    public void PutMeta(StreamMeta meta)
    {
        WriteOp(Op.PutMeta);
        WriteBytes(Records.EncodeMeta(meta));
    }

    public void PutState(long id, byte[] state)
    {
        WriteOp(Op.PutState);
        WriteLong(id);
        WriteBytes(state);
    }

    /// <summary>One producer's (epoch, last seq, updated-at) on stream <paramref name="id"/>: O(1) in the stream's producers.</summary>
    public void PutProducer(long id, string producerId, ProducerState producer)
    {
        WriteOp(Op.PutProducer);
        WriteLong(id);
        WriteBytes(Records.EncodeProducer(producerId, producer));
    }

    /// <summary>Forgets an expired producer of stream <paramref name="id"/>.</summary>
    public void DeleteProducer(long id, string producerId)
    {
        WriteOp(Op.DeleteProducer);
        WriteLong(id);
        WriteBytes(Encoding.UTF8.GetBytes(producerId));
    }

    public void PutFrame(long id, Frame frame)
    {
        WriteOp(Op.PutFrame);
        WriteLong(id);
        WriteLong(frame.Start);
        WriteBytes(Records.FrameValue(frame));
    }

    /// <summary>An append-time sample of stream <paramref name="id"/> (only for streams whose policy has a maximum age).</summary>
    public void PutTime(long id, long position, long ticks)
    {
        WriteOp(Op.PutTime);
        WriteLong(id);
        WriteLong(position);
        WriteLong(ticks);
    }

    /// <summary>
    /// Retention: forgets stream <paramref name="id"/>'s frames and append-time samples below its new retained start
    /// (logged in the same record as the state that holds that start).
    /// </summary>
    public void DropBelow(long id, long start)
    {
        WriteOp(Op.DropBelow);
        WriteLong(id);
        WriteLong(start);
    }

    public void PutAccess(long id, long ticks)
    {
        WriteOp(Op.PutAccess);
        WriteLong(id);
        WriteLong(ticks);
    }

    /// <summary>Removes a stream's records (and, on replay, its data file).</summary>
    public void DeleteStream(long id)
    {
        WriteOp(Op.DeleteStream);
        WriteLong(id);
    }

    /// <summary>
    /// Applies a payload: metadata changes to <paramref name="writer"/>; data writes and file deletions to the callbacks
    /// (null to skip them, as a checkpoint does: the data files already hold the bytes).
    /// </summary>
    public static void ApplyTo(ReadOnlyMemory<byte> payload, MetadataStore.MetadataWriter writer, Action<long, long, ReadOnlyMemory<byte>>? data, Action<long>? deleteFile)
    {
        var reader = new Reader(payload);
        while (!reader.AtEnd)
        {
            switch ((Op)reader.ReadByte())
            {
                case Op.Data:
                    {
                        var id = reader.ReadLong();
                        var position = reader.ReadLong();
                        var bytes = reader.ReadBytes();
                        data?.Invoke(id, position, bytes);
                        break;
                    }
                case Op.PutName:
                    {
                        var name = Encoding.UTF8.GetString(reader.ReadBytes().Span);
                        writer.PutName(name, reader.ReadLong());
                        break;
                    }
                case Op.DeleteName:
                    writer.DeleteName(Encoding.UTF8.GetString(reader.ReadBytes().Span));
                    break;
                case Op.PutMeta:
                    writer.PutMeta(Records.DecodeMeta(reader.ReadBytes().Span));
                    break;
                case Op.PutState:
                    {
                        var id = reader.ReadLong();
                        writer.PutState(id, reader.ReadBytes().ToArray());
                        break;
                    }
                case Op.PutProducer:
                    {
                        var id = reader.ReadLong();
                        var (producerId, producer) = Records.DecodeProducer(reader.ReadBytes().Span);
                        writer.PutProducer(id, producerId, producer);
                        break;
                    }
                case Op.DeleteProducer:
                    {
                        var id = reader.ReadLong();
                        writer.DeleteProducer(id, Encoding.UTF8.GetString(reader.ReadBytes().Span));
                        break;
                    }
                case Op.PutFrame:
                    {
                        var id = reader.ReadLong();
                        var start = reader.ReadLong();
                        var key = Records.FrameKey(id, start);
                        writer.PutFrame(id, Records.ReadFrame(key, reader.ReadBytes().Span));
                        break;
                    }
                case Op.PutAccess:
                    {
                        var id = reader.ReadLong();
                        writer.PutAccess(id, reader.ReadLong());
                        break;
                    }
                case Op.PutTime:
                    {
                        var id = reader.ReadLong();
                        var position = reader.ReadLong();
                        writer.PutTime(id, position, reader.ReadLong());
                        break;
                    }
                case Op.DropBelow:
                    {
                        var id = reader.ReadLong();
                        writer.DropBelow(id, reader.ReadLong());
                        break;
                    }
                case Op.DeleteStream:
                    {
                        var id = reader.ReadLong();
                        writer.DeleteStream(id);
                        deleteFile?.Invoke(id);
                        break;
                    }
                default:
                    throw new InvalidDataException("Unknown operation in the commit log.");
            }
        }
    }

    private void WriteOp(Op op) => _buffer.Write([(byte)op]);

    private void WriteLong(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    private void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_buffer.GetSpan(4), bytes.Length);
        _buffer.Advance(4);
        _buffer.Write(bytes);
    }

    private sealed class Reader(ReadOnlyMemory<byte> payload)
    {
        private int _position;

        public bool AtEnd => _position >= payload.Length;

        public byte ReadByte() => payload.Span[_position++];

        public long ReadLong()
        {
            var value = BinaryPrimitives.ReadInt64LittleEndian(payload.Span[_position..]);
            _position += 8;
            return value;
        }

        public ReadOnlyMemory<byte> ReadBytes()
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(payload.Span[_position..]);
            _position += 4;
            var bytes = payload.Slice(_position, length);
            _position += length;
            return bytes;
        }
    }
}
