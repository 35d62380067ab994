using DurableStreams.Core;
using System.Buffers;
using DurableStreams.Core.Local;
using DurableStreams.Protocol;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

public sealed partial class FileStreamStore
{
    /// <inheritdoc />
    public ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
    {
        var (stream, status) = Find(name, touch: true);
        if (stream is null)
        {
            return new(ReadResult.Failed(status));
        }
        // A compaction published while the read ran replaced bytes it may have chosen: the read starts again, and its
        // offset is resolved against the new offset space (410 for an old offset below the compacted end).
        for (var attempt = 1; ; attempt++)
        {
            var since = Volatile.Read(ref _compactionSequence);
            var result = ReadOnce(stream, request, since);
            if (result.Status != ReadStatus.Ok && stream.Unloaded && attempt < MaxReadAttempts)
            {
                // Unloaded during the read, and the name's current entry may have moved on (retention, compaction):
                // asked again of that entry rather than answered from this one's view.
                result.Dispose();
                (stream, status) = Find(name, touch: false);
                if (stream is null)
                {
                    return new(ReadResult.Failed(status));
                }
                continue;
            }
            if (attempt >= MaxReadAttempts || !(result.Status is ReadStatus.Ok or ReadStatus.BeforeRetainedStart) || !RacedCompaction(stream, since))
            {
                return new(result);
            }
            result.Dispose();
        }
    }

    /// <summary>One attempt of <see cref="ReadAsync"/>, choosing bytes of the offset space as of <paramref name="since"/>.</summary>
    private ReadResult ReadOnce(DiskStream stream, ReadRequest request, long since)
    {
        var startStatus = stream.ResolveRead(request.Offset, new FrameBoundaries(this), out var start, out var tail, out var closed);
        if (startStatus != ReadStatus.Ok)
        {
            return Failed(stream, startStatus);
        }
        var end = start;
        byte[]? buffer = null;
        if (request.Offset.Kind != OffsetKind.Now)
        {
            var budget = (long)Math.Max(1, request.MaxBytes);
            ReadStatus copied;
            try
            {
                end = Plan(stream, start, tail, ref budget, stream.IsJson, since);
                if (end == start)
                {
                    copied = ReadStatus.Ok;
                }
                else
                {
                    buffer = ArrayPool<byte>.Shared.Rent((int)(end - start));
                    copied = TryCopyCommitted(stream, start, buffer.AsSpan(0, (int)(end - start)), since);
                }
            }
            catch (DroppedByRetentionException)
            {
                copied = ReadStatus.BeforeRetainedStart;
            }
            catch (InvalidDataException)
            {
                copied = ReadStatus.Corrupt;
            }
            if (copied != ReadStatus.Ok)
            {
                if (buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                return Failed(stream, copied);
            }
        }
        return ReadResult.Served(
            stream.Snapshot(), start, end, tail, closed,
            buffer is null ? [] : [buffer.AsMemory(0, (int)(end - start))],
            buffer is null ? null : () => ArrayPool<byte>.Shared.Return(buffer));
    }

    /// <summary>A failed read; one below the retained start carries the stream's metadata, which says where data starts.</summary>
    private static ReadResult Failed(DiskStream stream, ReadStatus status) =>
        status == ReadStatus.BeforeRetainedStart ? new ReadResult { Status = status, Info = stream.Snapshot() } : ReadResult.Failed(status);

    /// <inheritdoc />
    public ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default)
    {
        var (stream, status) = Find(name, touch: false);
        return new(stream is null ? new MetadataResult(status) : new MetadataResult(ReadStatus.Ok, stream.Snapshot()));
    }

    /// <inheritdoc />
    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _streams.WaitAsync(name, offset, timeout, _time.GetUtcNow(), _deadlines, CancellationToken.None, cancellationToken);

    /// <summary>The wait registers on both tokens: no linked token source per waiting reader.</summary>
    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken stopToken, CancellationToken cancellationToken) =>
        _streams.WaitAsync(name, offset, timeout, _time.GetUtcNow(), _deadlines, stopToken, cancellationToken);

    private (DiskStream? Stream, ReadStatus Status) Find(string name, bool touch)
    {
        var found = _streams.Find(name, touch, _time.GetUtcNow(), out var expired);
        Faults.AfterLookup?.Invoke(name);
        if (expired is not null)
        {
            _structure.Wait();
            try
            {
                ExpireLocked(expired);
            }
            finally
            {
                _structure.Release();
            }
        }
        return found;
    }

    /// <inheritdoc />
    /// <remarks>
    /// The end of the last whole frame within the range: a frame cut by a read's end is read whole and CRC-checked, and
    /// again by the next read, which doubled the work of a long catch-up of appends not aligned to its slices.
    /// </remarks>
    public long ReadEnd(string name, long position, int maxBytes)
    {
        var end = position + maxBytes;
        if (!_streams.TryGetLoaded(name, out var stream))
        {
            return end;
        }
        lock (stream.Gate)
        {
            if (stream.Frames is not { } frames || position < stream.BasePosition || end >= frames.End)
            {
                return end;
            }
            var index = frames.Find(end - 1);
            if (index < 0)
            {
                return end;
            }
            var frame = frames[index];
            return frame.Start > position && frame.End > end ? frame.Start : end;
        }
    }

    /// <inheritdoc />
    public ValueTask<ReadStatus> ReadIntoAsync(string name, long position, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        for (var attempt = 1; ; attempt++)
        {
            var (stream, status) = Find(name, touch: attempt == 1);
            if (stream is null)
            {
                return new(status);
            }
            var since = Volatile.Read(ref _compactionSequence);
            var copied = stream.CheckRange(position, destination.Length) is not ReadStatus.Ok and var rangeStatus
                ? rangeStatus
                : TryCopyCommitted(stream, position, destination.Span, since);
            if (copied != ReadStatus.Ok && stream.Unloaded && attempt < MaxReadAttempts)
            {
                // Unloaded under the read (its file closed, its tail as of the unload): the name's current entry answers.
                continue;
            }
            // Bytes below a compacted end chosen before the compaction was published belong to the old offset space.
            return new(copied == ReadStatus.Ok && RacedCompaction(stream, since) && DroppedUnderRead(OwnerOf(stream, position), position, since)
                ? ReadStatus.BeforeRetainedStart
                : copied);
        }
    }

    /// <summary>
    /// The committed frames of a stream, loading them from LMDB on first use. Call under the stream's gate. Frames below
    /// the retained start that LMDB still holds (a retention commit not yet checkpointed) are dropped on load.
    /// </summary>
    private FrameIndex FramesOf(DiskStream stream)
    {
        if (stream.Frames is { } frames)
        {
            return frames;
        }
        frames = _metadata.LoadFrames(stream.Id);
        if (stream.RetainedStart > stream.BasePosition)
        {
            frames.DropBelow(stream.RetainedStart);
        }
        return stream.Frames = frames;
    }

    /// <summary>How many times LMDB's mapped pages were given back after loading streams and frame indexes (tests, diagnostics).</summary>
    internal long MappedPagesReleases => _metadata.MappedPagesReleases;

    /// <summary>Test hook: gives LMDB's mapped pages back now; false where the mapping is unknown.</summary>
    internal bool ReleaseMappedPages() => _metadata.ReleaseMappedPages();

    /// <summary>
    /// Where a read from <paramref name="position"/> within the budget ends, below <paramref name="end"/>, following a
    /// fork's inherited range into its source chain. JSON reads end on a message boundary (and take at least one
    /// message); byte reads may end inside an append.
    /// </summary>
    private long Plan(DiskStream stream, long position, long end, ref long budget, bool wholeMessages, long since)
    {
        if (stream.Source is null || position >= stream.BasePosition)
        {
            return PlanOwn(stream, position, end, ref budget, wholeMessages, since);
        }
        // Walked in a loop, not recursion: a chain may be thousands of forks deep.
        var parts = Parts(stream, position, end);
        for (var i = 0; i < parts.Count; i++)
        {
            var (owner, from, to) = parts[i];
            if (i > 0 && (position < from || budget <= 0))
            {
                // The budget ran out (or a message did not fit) in an earlier part.
                return position;
            }
            position = PlanOwn(owner, position, to, ref budget, wholeMessages, since);
        }
        return position;
    }

    /// <summary>
    /// The parts of [<paramref name="position"/>, <paramref name="end"/>) that each stream of the fork chain stores, in
    /// position order (root-most first); empty parts are left out. A source's part ends where its fork begins.
    /// </summary>
    private static List<(DiskStream Stream, long From, long To)> Parts(DiskStream stream, long position, long end)
    {
        var parts = new List<(DiskStream Stream, long From, long To)>();
        var current = stream;
        var to = end;
        while (current.Source is { } source && position < current.BasePosition)
        {
            if (current.BasePosition < to)
            {
                parts.Add((current, current.BasePosition, to));
                to = current.BasePosition;
            }
            current = source;
        }
        if (position < to)
        {
            parts.Add((current, position, to));
        }
        parts.Reverse();
        return parts;
    }

    /// <summary>Plans the part of a read in the stream's own data, below <paramref name="end"/>.</summary>
    private long PlanOwn(DiskStream stream, long position, long end, ref long budget, bool wholeMessages, long since)
    {
        if (position >= end)
        {
            return position;
        }
        var stop = position;
        lock (stream.Gate)
        {
            var frames = FramesOf(stream);
            var index = stream.FindFrame(position);
            if (index < 0)
            {
                if (DroppedUnderRead(stream, position, since))
                {
                    throw new DroppedByRetentionException();
                }
                // Committed data the index does not cover is a hole: never answer it with an empty chunk.
                MarkCorrupt(stream, position);
                throw new InvalidDataException("No frame covers committed data.");
            }
            var remaining = budget;
            // Frames taken in all and since the last message boundary, and where that boundary is.
            var taken = 0;
            var sinceBoundary = 0;
            var boundaryStop = position;
            for (; index < frames.Count && frames[index].Start < end; index++)
            {
                var frame = frames[index];
                var from = Math.Max(position, frame.Start);
                var to = Math.Min(frame.End, end);
                if (wholeMessages)
                {
                    // A message starting here must fit whole, frames and all, unless it is the read's first.
                    if (sinceBoundary == 0 && stop > position && MessageEnd(frames, index, end) - from > remaining)
                    {
                        break;
                    }
                    taken++;
                    sinceBoundary++;
                    remaining -= to - from;
                    stop = to;
                    if (frame.Boundary)
                    {
                        sinceBoundary = 0;
                        boundaryStop = stop;
                        if (remaining <= 0)
                        {
                            break;
                        }
                    }
                    continue;
                }
                var take = Math.Min(to - from, remaining);
                stop = from + take;
                remaining -= take;
                if (remaining <= 0)
                {
                    break;
                }
            }
            if (wholeMessages && sinceBoundary > 0 && taken > sinceBoundary)
            {
                // Do not end inside a message that did not fit.
                stop = boundaryStop;
            }
        }
        budget -= stop - position;
        return stop;
    }

    /// <summary>The end of the message whose frames begin at <paramref name="index"/> (its boundary frame), at most <paramref name="end"/>.</summary>
    private static long MessageEnd(FrameIndex frames, int index, long end)
    {
        for (; index < frames.Count && frames[index].Start < end; index++)
        {
            if (frames[index].Boundary)
            {
                return Math.Min(frames[index].End, end);
            }
        }
        return end;
    }

    /// <summary>
    /// <see cref="CopyCommitted"/> with its failures as statuses: a checksum mismatch, a hole or a missing data file is
    /// <see cref="ReadStatus.Corrupt"/> (the stream is marked so); a stream deleted meanwhile is not found; a range
    /// retention freed during the read is <see cref="ReadStatus.BeforeRetainedStart"/>.
    /// </summary>
    private ReadStatus TryCopyCommitted(DiskStream stream, long position, Span<byte> destination, long since)
    {
        try
        {
            CopyCommitted(stream, position, destination, since);
            return ReadStatus.Ok;
        }
        catch (DroppedByRetentionException)
        {
            return ReadStatus.BeforeRetainedStart;
        }
        catch (InvalidDataException)
        {
            return ReadStatus.Corrupt;
        }
        catch (ObjectDisposedException)
        {
            return ReadStatus.NotFound;
        }
        catch (FileNotFoundException)
        {
            if (DroppedUnderRead(OwnerOf(stream, position), position, since))
            {
                return ReadStatus.BeforeRetainedStart;
            }
            MarkCorrupt(stream, position);
            return ReadStatus.Corrupt;
        }
    }

    /// <summary>
    /// Copies committed bytes [<paramref name="position"/>, position + destination.Length) into
    /// <paramref name="destination"/>, following a fork's inherited range into its source chain. Every frame the range
    /// touches is CRC-checked: frames inside the range are read straight into the destination with one positioned
    /// read; a frame cut by either end of the range is read whole into a scratch buffer.
    /// </summary>
    private void CopyCommitted(DiskStream stream, long position, Span<byte> destination, long since)
    {
        if (stream.Source is null || position >= stream.BasePosition)
        {
            CopyOwn(stream, position, destination, since);
            return;
        }
        // Walked in a loop, not recursion: a chain may be thousands of forks deep.
        foreach (var (owner, from, to) in Parts(stream, position, position + destination.Length))
        {
            CopyOwn(owner, from, destination.Slice((int)(from - position), (int)(to - from)), since);
        }
    }

    /// <summary>
    /// How far past a large read (<see cref="ReadAheadFromBytes"/> or more: a catch-up piece) the kernel is asked to read
    /// ahead, within the committed data: the next pieces of a cold catch-up then come from the disk while this one is
    /// sent, instead of each read waiting for the disk in turn. Page cache only, never process memory.
    /// </summary>
    internal const int ReadAheadBytes = 4 * 1024 * 1024;

    /// <summary>Reads shorter than this (live tails, small pages) ask for no read-ahead.</summary>
    internal const int ReadAheadFromBytes = MaxFrameBytes;

    /// <summary>
    /// Copies bytes of the stream's own data (none inherited) into <paramref name="destination"/>, checking every frame.
    /// A compacted stream's frames below its compacted end are read from its snapshot file, the rest from its data file.
    /// </summary>
    private void CopyOwn(DiskStream stream, long position, Span<byte> destination, long since)
    {
        if (destination.IsEmpty)
        {
            return;
        }
        var end = position + destination.Length;
        Frame[] selected;
        int count;
        SafeFileHandle handle;
        SafeFileHandle? snapshot = null;
        var snapshotFrames = 0;
        var snapshotBase = 0L;
        var referenced = false;
        var aheadFrom = end;
        var aheadTo = end;
        lock (stream.Gate)
        {
            var frames = FramesOf(stream);
            var first = stream.FindFrame(position);
            var last = first < 0 ? -1 : stream.FindFrame(end - 1);
            if (last < 0)
            {
                if (DroppedUnderRead(stream, position, since))
                {
                    throw new DroppedByRetentionException();
                }
                // Committed data the index does not cover is a hole: never answer it.
                MarkCorrupt(stream, position);
                throw new InvalidDataException("No frame covers committed data.");
            }
            count = last - first + 1;
            selected = ArrayPool<Frame>.Shared.Rent(count);
            frames.CopyTo(first, selected, count);
            var compacted = stream.Compacted;
            while (snapshotFrames < count && selected[snapshotFrames].Start < compacted.End)
            {
                snapshotFrames++;
            }
            if (snapshotFrames > 0)
            {
                // Opened under the gate: the file is current until a later compaction is published and frees it.
                snapshot = OpenSnapshot(stream, compacted, since);
                snapshotBase = compacted.Start;
            }
            handle = snapshotFrames == count ? snapshot! : HandleOf(stream);
            // Hold a reference so a concurrent close (idle-file trimming, deletion) waits for this read.
            handle.DangerousAddRef(ref referenced);
            if (destination.Length >= ReadAheadFromBytes && snapshotFrames < count)
            {
                // The data file's part only (a snapshot is small and read whole). Ask only for what the last read-ahead did not cover, unless that was elsewhere in the stream (another
                // reader, or this one moved): asking again for cached pages costs a page-cache walk.
                aheadTo = Math.Min(frames.End, end + ReadAheadBytes);
                var asked = stream.ReadAheadEnd;
                aheadFrom = asked >= end && asked <= aheadTo ? asked : end;
                stream.ReadAheadEnd = Math.Max(aheadTo, end);
            }
        }
        try
        {
            Faults.BeforeCopy?.Invoke();
            if (aheadTo > aheadFrom)
            {
                Faults.ReadAhead?.Invoke(aheadFrom, aheadTo);
                NativeIo.WillNeed(handle, aheadFrom - stream.BasePosition, aheadTo - aheadFrom);
            }
            if (snapshot is not null)
            {
                CopyFrames(stream, snapshot, snapshotBase, selected.AsSpan(0, snapshotFrames), position, destination, since);
            }
            if (snapshotFrames < count)
            {
                CopyFrames(stream, handle, stream.BasePosition, selected.AsSpan(snapshotFrames, count - snapshotFrames), position, destination, since);
            }
        }
        finally
        {
            ArrayPool<Frame>.Shared.Return(selected);
            if (referenced)
            {
                handle.DangerousRelease();
            }
            // The snapshot file's handle is this read's own.
            snapshot?.Dispose();
        }
    }

    /// <summary>
    /// Copies the parts of the contiguous <paramref name="inner"/> frames inside [<paramref name="position"/>, position +
    /// destination.Length) from the file <paramref name="handle"/>, where logical position P is at file offset
    /// <c>P - fileBase</c>. Frames inside the range are read straight into the destination with one positioned read; a
    /// frame cut by either end of the range is read whole into a scratch buffer.
    /// </summary>
    private void CopyFrames(DiskStream stream, SafeFileHandle handle, long fileBase, Span<Frame> inner, long position, Span<byte> destination, long since)
    {
        var end = position + destination.Length;
        if (inner[0].Start < position || inner[0].End > end)
        {
            CopyCutFrame(stream, handle, fileBase, inner[0], position, destination, since);
            inner = inner[1..];
        }
        if (!inner.IsEmpty && inner[^1].End > end)
        {
            CopyCutFrame(stream, handle, fileBase, inner[^1], position, destination, since);
            inner = inner[..^1];
        }
        if (!inner.IsEmpty)
        {
            var from = inner[0].Start;
            var whole = destination.Slice((int)(from - position), (int)(inner[^1].End - from));
            ReadExactly(stream, handle, fileBase, from, whole, since);
            foreach (var frame in inner)
            {
                Verify(stream, frame, whole.Slice((int)(frame.Start - from), frame.Length), since);
            }
        }
    }

    /// <summary>Copies the part of <paramref name="frame"/> inside the destination's range, after checking the whole frame.</summary>
    private void CopyCutFrame(DiskStream stream, SafeFileHandle handle, long fileBase, Frame frame, long position, Span<byte> destination, long since)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(frame.Length);
        try
        {
            var bytes = scratch.AsSpan(0, frame.Length);
            ReadExactly(stream, handle, fileBase, frame.Start, bytes, since);
            Verify(stream, frame, bytes, since);
            var from = Math.Max(position, frame.Start);
            var to = Math.Min(position + destination.Length, frame.End);
            bytes.Slice((int)(from - frame.Start), (int)(to - from)).CopyTo(destination[(int)(from - position)..]);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private void ReadExactly(DiskStream stream, SafeFileHandle handle, long fileBase, long position, Span<byte> destination, long since)
    {
        while (!destination.IsEmpty)
        {
            var read = RandomAccess.Read(handle, destination, position - fileBase);
            if (read <= 0)
            {
                if (DroppedUnderRead(stream, position, since))
                {
                    throw new DroppedByRetentionException();
                }
                MarkCorrupt(stream, position);
                throw new InvalidDataException("Short read of committed data.");
            }
            position += read;
            destination = destination[read..];
        }
    }

    private void Verify(DiskStream stream, Frame frame, ReadOnlySpan<byte> bytes, long since)
    {
        if (Crc32C.Compute(bytes) != frame.Crc)
        {
            // Re-checked after the failure: retention publishes a start before it frees the pages below it.
            if (DroppedUnderRead(stream, frame.Start, since))
            {
                throw new DroppedByRetentionException();
            }
            MarkCorrupt(stream, frame.Start);
            throw new InvalidDataException("Checksum mismatch in committed data.");
        }
    }

    private void MarkCorrupt(DiskStream stream, long position)
    {
        lock (stream.Gate)
        {
            stream.Corrupt = true;
        }
        LogCorrupt(_logger, stream.Name, position);
    }

    private CreateLimits Limits => new(_options.MaxJsonDepth, _options.MaxMessagesPerAppend, _options.MaxForkDepth);

    /// <summary>Message (JSON) or append boundaries in a stream's own data: the boundary bits of its committed frames.</summary>
    private readonly struct FrameBoundaries(FileStreamStore store) : IMessageIndex<DiskStream>
    {
        public bool IsMessageStart(DiskStream owner, long position)
        {
            var frames = store.FramesOf(owner);
            var index = owner.FindFrame(position);
            // The first frame kept starts a message: the stream's base, or a retained start (always a boundary).
            return index >= 0 && frames[index].Start == position && (index == 0 || frames[index - 1].Boundary);
        }

        public long MessageEnd(DiskStream owner, long position, long end)
        {
            var frames = store.FramesOf(owner); // loads the index FindFrame searches
            var index = owner.FindFrame(position);
            return index < 0 ? end : FileStreamStore.MessageEnd(frames, index, end);
        }
    }
}
