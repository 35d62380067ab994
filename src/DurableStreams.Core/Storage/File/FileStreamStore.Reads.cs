using DurableStreams.Protocol;

namespace DurableStreams.Storage.File;

public sealed partial class FileStreamStore
{
    public ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
    {
        var (stream, status) = Find(name, touch: true);
        if (stream is null)
        {
            return new(ReadResult.Failed(status));
        }
        long tail;
        bool closed;
        lock (stream.Gate)
        {
            if (stream.Corrupt)
            {
                return new(ReadResult.Failed(ReadStatus.Corrupt));
            }
            tail = stream.Committed.Tail;
            closed = stream.Committed.Closed;
        }
        var startStatus = ReadRules.ResolveStart(request.Offset, tail, stream.IsJson, p => IsBoundary(stream, p), out var start);
        if (startStatus != ReadStatus.Ok)
        {
            return new(ReadResult.Failed(startStatus));
        }
        var chunks = new List<ReadOnlyMemory<byte>>();
        var rented = new List<byte[]>();
        var end = start;
        if (request.Offset.Kind != OffsetKind.Now)
        {
            var budget = (long)Math.Max(1, request.MaxBytes);
            try
            {
                end = Gather(stream, start, tail, ref budget, stream.IsJson, chunks, rented);
            }
            catch (InvalidDataException)
            {
                return new(ReadResult.Failed(ReadStatus.Corrupt));
            }
            catch (ObjectDisposedException)
            {
                // Deleted while reading.
                return new(ReadResult.Failed(ReadStatus.NotFound));
            }
            catch (FileNotFoundException)
            {
                MarkCorrupt(stream, start);
                return new(ReadResult.Failed(ReadStatus.Corrupt));
            }
        }
        return new(new ReadResult
        {
            Status = ReadStatus.Ok,
            Info = Snapshot(stream),
            Start = new StreamOffset(start),
            Next = new StreamOffset(end),
            UpToDate = end == tail,
            Closed = closed && end == tail,
            Chunks = chunks,
            Length = end - start,
            Release = rented.Count == 0 ? null : () =>
            {
                foreach (var buffer in rented)
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
            },
        });
    }

    /// <summary>The committed frames of a stream, loading them from LMDB on first use. Call under the stream's gate.</summary>
    private List<Frame> FramesOf(DiskStream stream) => stream.Frames ??= _metadata.LoadFrames(stream.Id);

    /// <summary>
    /// Reads committed data in [<paramref name="position"/>, <paramref name="end"/>) within the budget, stitching a
    /// fork's inherited range from its source chain. Whole frames are read and CRC-checked; only the requested bytes are
    /// returned. JSON reads return whole messages only (at least one).
    /// </summary>
    private long Gather(DiskStream stream, long position, long end, ref long budget, bool wholeMessages, List<ReadOnlyMemory<byte>> chunks, List<byte[]> rented)
    {
        if (stream.Source is not null && position < stream.BasePosition)
        {
            var inheritedEnd = Math.Min(end, stream.BasePosition);
            position = Gather(stream.Source, position, inheritedEnd, ref budget, wholeMessages, chunks, rented);
            if (position < inheritedEnd || budget <= 0)
            {
                return position;
            }
        }
        if (position >= end)
        {
            return position;
        }
        List<Frame> selected = [];
        var stop = position;
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        var referenced = false;
        lock (stream.Gate)
        {
            var frames = FramesOf(stream);
            var index = stream.FindFrame(position);
            if (index < 0)
            {
                // Committed data the index does not cover is a hole: never answer it with an empty chunk.
                MarkCorrupt(stream, position);
                throw new InvalidDataException("No frame covers committed data.");
            }
            var remaining = budget;
            var messageStartCount = 0;
            for (; index < frames.Count && frames[index].Start < end; index++)
            {
                var frame = frames[index];
                var from = Math.Max(position, frame.Start);
                var to = Math.Min(frame.End, end);
                if (wholeMessages)
                {
                    if (to - from > remaining && stop > position && selected.Count == messageStartCount)
                    {
                        break;
                    }
                    selected.Add(frame);
                    remaining -= to - from;
                    stop = to;
                    if (frame.Boundary)
                    {
                        messageStartCount = selected.Count;
                        if (remaining <= 0)
                        {
                            break;
                        }
                    }
                    continue;
                }
                var take = Math.Min(to - from, remaining);
                selected.Add(frame);
                stop = from + take;
                remaining -= take;
                if (remaining <= 0)
                {
                    break;
                }
            }
            if (wholeMessages && messageStartCount > 0 && messageStartCount < selected.Count)
            {
                // Do not end inside a message that did not fit.
                selected.RemoveRange(messageStartCount, selected.Count - messageStartCount);
                stop = selected[^1].End;
            }
            if (selected.Count == 0)
            {
                return position;
            }
            handle = HandleOf(stream);
            // Hold a reference so a concurrent close (idle-file trimming, deletion) waits for this read.
            handle.DangerousAddRef(ref referenced);
        }
        var first = selected[0].Start;
        var last = selected[^1].End;
        var length = (int)(last - first);
        var bytes = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        rented.Add(bytes);
        int read;
        try
        {
            read = RandomAccess.Read(handle, bytes.AsSpan(0, length), first - stream.BasePosition);
        }
        finally
        {
            if (referenced)
            {
                handle.DangerousRelease();
            }
        }
        if (read != length)
        {
            MarkCorrupt(stream, first + read);
            throw new InvalidDataException("Short read of committed data.");
        }
        foreach (var frame in selected)
        {
            var span = bytes.AsSpan((int)(frame.Start - first), frame.Length);
            if (Crc32C.Compute(span) != frame.Crc)
            {
                MarkCorrupt(stream, frame.Start);
                throw new InvalidDataException("Checksum mismatch in committed data.");
            }
        }
        chunks.Add(bytes.AsMemory((int)(position - first), (int)(stop - position)));
        budget -= stop - position;
        return stop;
    }

    private void MarkCorrupt(DiskStream stream, long position)
    {
        lock (stream.Gate)
        {
            stream.Corrupt = true;
        }
        LogCorrupt(_logger, stream.Name, position);
    }

    /// <summary>The next message (JSON) or append boundary after <paramref name="position"/>, or the tail.</summary>
    private long NextBoundary(DiskStream stream, long position, long tail)
    {
        if (stream.Source is not null && position < stream.BasePosition)
        {
            return Math.Min(NextBoundary(stream.Source, position, stream.BasePosition), stream.BasePosition);
        }
        lock (stream.Gate)
        {
            var frames = FramesOf(stream);
            var index = stream.FindFrame(position);
            if (index < 0)
            {
                return tail;
            }
            for (; index < frames.Count; index++)
            {
                if (frames[index].Boundary || frames[index].End >= tail)
                {
                    return Math.Min(frames[index].End, tail);
                }
            }
            return tail;
        }
    }

    /// <summary>True when <paramref name="position"/> starts a message (or is the start/tail) of the stream.</summary>
    private bool IsBoundary(DiskStream stream, long position)
    {
        if (stream.Source is not null && position < stream.BasePosition)
        {
            return IsBoundary(stream.Source, position);
        }
        lock (stream.Gate)
        {
            if (position == stream.BasePosition || position == stream.Committed.Tail)
            {
                return true;
            }
            var frames = FramesOf(stream);
            var index = stream.FindFrame(position);
            return index > 0 && frames[index].Start == position && frames[index - 1].Boundary;
        }
    }
}
