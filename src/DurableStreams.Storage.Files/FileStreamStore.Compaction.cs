using System.Globalization;
using DurableStreams.Core.Compaction;
using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>
/// State-Protocol compaction (issue 18): a snapshot never overwrites the data file. It is written to its own file,
/// <c>snapshots/&lt;id&gt;.s&lt;generation&gt;</c>, synced with its directory, and only then committed through the group
/// commit as one record: the stream's <c>state</c> (version 4: retained start S, generation G+1, the snapshot's range
/// [S, E)), <c>DropBelow(E)</c> and the snapshot's frames. Once that record is durable the new start and offset space
/// are published under the stream's gate; then the previous snapshot file is deleted and the data file's pages below
/// E are released (hole punching). Recovery keeps the snapshot file the state record names and deletes any other.
/// </summary>
public sealed partial class FileStreamStore : IStreamCompaction
{
    /// <summary>How often a read starts again when compactions keep replacing the bytes it chose (then it answers 410).</summary>
    private const int MaxReadAttempts = 4;

    /// <summary>Store-wide count of published compactions; a read notes it when it starts (see <see cref="RacedCompaction"/>).</summary>
    private long _compactionSequence;

    /// <inheritdoc/>
    public async ValueTask<CompactionCommitResult> CommitCompactionAsync(string name, CompactionCommit commit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commit);
        var (stream, _) = Find(name, touch: false);
        if (stream is null)
        {
            return new CompactionCommitResult(CompactionCommitStatus.NotFound);
        }
        long generation = 0;
        bool unloaded;
        lock (stream.Gate)
        {
            unloaded = stream.Unloaded;
            if (!unloaded)
            {
                if (CheckCompaction(stream, commit) is not CompactionCommitStatus.Committed and var refused)
                {
                    return new CompactionCommitResult(refused);
                }
                // Also keeps the stream loaded until the compaction is published (or given up).
                stream.Compacting = true;
                generation = stream.Compacted.Generation + 1;
            }
        }
        if (unloaded)
        {
            // Unloaded since the lookup (it was idle): the name's current entry is the one to compact.
            return await CommitCompactionAsync(name, commit, cancellationToken);
        }
        var path = SnapshotPath(stream.Id, generation);
        var previous = default(SnapshotSpan);
        var committed = false;
        try
        {
            // 1. The snapshot's own file, durable (with its directory entry) before any record names it.
            WriteSnapshotFile(path, commit.Snapshot);
            var span = new SnapshotSpan(generation, commit.SnapshotStart, commit.End);
            var frames = SnapshotFrames(commit);
            Task pending;
            lock (stream.Gate)
            {
                // Checked again: retention, a failed commit or a deletion may have come in between.
                if (CheckCompaction(stream, commit, again: true) is not CompactionCommitStatus.Committed and var refused)
                {
                    return new CompactionCommitResult(refused);
                }
                previous = stream.Compacted;
                pending = QueueCompaction(stream, span, frames);
            }
            // 2. One record, one sync (outside the gate); OnCommitted publishes the new start and offset space.
            _committer.Drive();
            try
            {
                await pending;
            }
            catch (Exception) when (stream.Removed || stream.SoftDeleted)
            {
                return new CompactionCommitResult(CompactionCommitStatus.NotFound);
            }
            committed = true;
        }
        finally
        {
            lock (stream.Gate)
            {
                stream.Compacting = false;
            }
            if (!committed)
            {
                // Never named by a durable record (or the stream went away): recovery would delete it too.
                TryDeleteSnapshot(path);
            }
        }
        // 3. Free what the new snapshot replaced: the previous snapshot file, the data file's pages below the end.
        if (previous.Generation > 0)
        {
            TryDeleteSnapshot(SnapshotPath(stream.Id, previous.Generation));
        }
        var freed = Faults.SkipFree ? 0 : PunchBelow(stream, commit.End) + Math.Max(0, previous.End - previous.Start);
        var info = stream.Snapshot();
        LogCompacted(_logger, stream.Name, generation, commit.SnapshotStart, commit.End);
        return new CompactionCommitResult(CompactionCommitStatus.Committed, info, freed);
    }

    /// <summary>
    /// Whether <paramref name="commit"/> may apply now (under the gate): the shared rules against the state the next
    /// record would carry, with no retention or other compaction commit in flight.
    /// </summary>
    private CompactionCommitStatus CheckCompaction(DiskStream stream, CompactionCommit commit, bool again = false)
    {
        if (stream.Removed || stream.SoftDeleted)
        {
            return CompactionCommitStatus.NotFound;
        }
        if (!stream.IsJson || stream.Source is not null)
        {
            return CompactionCommitStatus.NotApplicable;
        }
        if (!stream.Created.IsCompleted || stream.Corrupt || (stream.Compacting && !again)
            || stream.PendingRetainedStart != stream.RetainedStart || stream.PendingCompacted != stream.Compacted)
        {
            return CompactionCommitStatus.Conflict;
        }
        var tail = stream.Committed.Tail;
        var boundary = commit.End == tail || (commit.End < tail && new FrameBoundaries(this).IsMessageStart(stream, commit.End));
        return CompactionRules.CheckCommit(commit, stream.IsJson, stream.Source is not null, stream.RetainedStart,
            stream.Space.Generation, tail, boundary);
    }

    /// <summary>
    /// Queues the compaction's record (call under the gate): the state with the new start and snapshot (and the tail,
    /// closure and Stream-Seq the writer state has reached, as retention does), the deletion of every frame record below
    /// the end, and the snapshot's frames. A failed commit rolls the stream back like a failed append.
    /// </summary>
    private Task QueueCompaction(DiskStream stream, SnapshotSpan span, List<Frame> frames)
    {
        stream.PendingRetainedStart = span.Start;
        stream.PendingCompacted = span;
        var encoded = Records.EncodeState(stream.Pending, span.Start, span);
        var generation = stream.Generation;
        var id = stream.Id;
        var work = new CommitWork
        {
            IsValid = stream.StillCurrent(),
            Apply = w =>
            {
                w.PutState(id, encoded);
                w.DropBelow(id, span.End);
                foreach (var frame in frames)
                {
                    w.PutFrame(id, frame);
                }
            },
            OnCommitted = () => PublishCompaction(stream, span, frames),
            OnFailed = _ => Rollback(stream, generation),
        };
        var commit = _committer.Enqueue(work, callerDrives: true);
        stream.LastCommit = commit;
        return commit;
    }

    /// <summary>
    /// Makes a durable compaction visible in one step under the gate: the frame index below the end becomes the
    /// snapshot's, and the retained start, offset space and compaction sequence move together.
    /// </summary>
    private void PublishCompaction(DiskStream stream, SnapshotSpan span, List<Frame> frames)
    {
        lock (stream.Gate)
        {
            // Loaded before the first publish since start-up (LMDB then holds every frame the log does not).
            var old = FramesOf(stream);
            var index = new FrameIndex();
            foreach (var frame in frames)
            {
                index.Add(frame);
            }
            for (var i = old.Find(span.End); i >= 0 && i < old.Count; i++)
            {
                index.Add(old[i]);
            }
            stream.Frames = index;
            stream.Times?.DropBelow(span.End);
            stream.RetainedStart = Math.Max(stream.RetainedStart, span.Start);
            stream.Compacted = span;
            stream.Space = span.Space;
            stream.CompactionSequence = Interlocked.Increment(ref _compactionSequence);
        }
    }

    /// <summary>The snapshot's frames at their logical positions: each message cut into frames of at most 64 KiB, ending on a boundary.</summary>
    private static List<Frame> SnapshotFrames(CompactionCommit commit)
    {
        var frames = new List<Frame>(commit.MessageLengths.Count);
        var bytes = commit.Snapshot.Span;
        var offset = 0;
        foreach (var length in commit.MessageLengths)
        {
            var remaining = length;
            while (remaining > 0)
            {
                var take = Math.Min(MaxFrameBytes, remaining);
                remaining -= take;
                frames.Add(new Frame(commit.SnapshotStart + offset, take, Crc32C.Compute(bytes.Slice(offset, take)), remaining == 0));
                offset += take;
            }
        }
        return frames;
    }

    /// <summary>Writes a snapshot file whole and makes it and its directory entry durable (by the durability mode).</summary>
    private void WriteSnapshotFile(string path, ReadOnlyMemory<byte> snapshot)
    {
        var directory = Path.GetDirectoryName(path)!;
        PrivateFiles.CreateDirectory(directory);
        Faults.BeforeSnapshotWrite?.Invoke();
        using (var handle = System.IO.File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            PrivateFiles.Restrict(handle);
            RandomAccess.Write(handle, snapshot.Span, 0);
            if (_options.Durability != DurabilityMode.None)
            {
                NativeIo.SyncData(handle);
            }
        }
        if (_options.Durability != DurabilityMode.None)
        {
            NativeIo.SyncDirectory(directory);
        }
    }

    /// <summary>
    /// Opens the snapshot file of <paramref name="compacted"/> for a read (under the gate). A missing file is a
    /// compaction the read raced (410 or a retry) or, if none, damage (the stream fails closed).
    /// </summary>
    private SafeFileHandle OpenSnapshot(DiskStream stream, SnapshotSpan compacted, long since)
    {
        try
        {
            return System.IO.File.OpenHandle(SnapshotPath(stream.Id, compacted.Generation), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            if (DroppedUnderRead(stream, compacted.Start, since))
            {
                throw new DroppedByRetentionException();
            }
            MarkCorrupt(stream, compacted.Start);
            throw new InvalidDataException("The stream's snapshot file is missing.", ex);
        }
    }

    /// <summary>
    /// Whether a compaction was published, since a read that started at sequence <paramref name="since"/>, on the
    /// stream or on a source it reads through: the bytes the read chose may be of the old offset space.
    /// </summary>
    private bool RacedCompaction(DiskStream stream, long since)
    {
        if (Volatile.Read(ref _compactionSequence) == since)
        {
            return false;
        }
        for (var s = stream; s is not null; s = s.Source)
        {
            lock (s.Gate)
            {
                if (s.CompactionSequence > since)
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>The stream of the fork chain whose own data holds <paramref name="position"/>.</summary>
    private static DiskStream OwnerOf(DiskStream stream, long position)
    {
        var owner = stream;
        while (owner.Source is { } source && position < owner.BasePosition)
        {
            owner = source;
        }
        return owner;
    }

    /// <summary>The stream's current offset-space generation (stamped on every offset the store returns).</summary>
    private static long GenerationOf(DiskStream stream)
    {
        lock (stream.Gate)
        {
            return stream.Space.Generation;
        }
    }

    private string SnapshotDirectory => Path.Combine(_options.DataDirectory, "snapshots");

    private string SnapshotPath(long id, long generation) =>
        Path.Combine(SnapshotDirectory, id.ToString("x16", CultureInfo.InvariantCulture) + ".s" + generation.ToString(CultureInfo.InvariantCulture));

    private void TryDeleteSnapshot(string path)
    {
        try
        {
            System.IO.File.Delete(path);
        }
        catch (IOException ex)
        {
            LogBackgroundFailure(_logger, ex, "deleting " + path);
        }
    }

    /// <summary>Deletes every snapshot file of a stream that is being removed.</summary>
    private void DeleteSnapshots(DiskStream stream)
    {
        if (stream.Compacted.Generation > 0 || stream.Compacting)
        {
            TryDeleteSnapshot(SnapshotPath(stream.Id, stream.Compacted.Generation));
        }
    }

    /// <summary>
    /// Recovery: a snapshot file is current when its stream's state record names its generation; any other (a crash
    /// before its commit, before the previous one was freed, or after its stream was deleted) is deleted.
    /// </summary>
    private void RecoverSnapshotFiles(Func<long, long?> committedGeneration)
    {
        if (!Directory.Exists(SnapshotDirectory))
        {
            return;
        }
        var deleted = 0;
        foreach (var file in Directory.EnumerateFiles(SnapshotDirectory))
        {
            var name = Path.GetFileName(file);
            var dot = name.IndexOf(".s", StringComparison.Ordinal);
            var current = dot == 16
                && long.TryParse(name.AsSpan(0, 16), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id)
                && long.TryParse(name.AsSpan(18), NumberStyles.None, CultureInfo.InvariantCulture, out var generation)
                && committedGeneration(id) == generation;
            if (!current)
            {
                System.IO.File.Delete(file);
                deleted++;
            }
        }
        if (deleted > 0)
        {
            NativeIo.SyncDirectory(SnapshotDirectory);
            LogSnapshotsRemoved(_logger, deleted);
        }
    }

    /// <summary>
    /// The snapshot generation the committed <c>state</c> record of stream <paramref name="id"/> names, or null for a
    /// stream that is gone. Read from LMDB at open (after the commit log's replay, so exact), once per snapshot file.
    /// </summary>
    private long? CommittedSnapshotGeneration(long id)
    {
        if (_metadata.LoadStream(id) is not { } record)
        {
            return null;
        }
        if (record.State is not { } encoded)
        {
            return 0;
        }
        Records.DecodeStateInto(encoded, new Core.StreamState { ContentType = record.Meta.ContentType, Requested = record.Meta.Requested }, out _, out var compacted);
        return compacted.Generation;
    }

    [LoggerMessage(EventId = LogEvents.StreamCompacted, Level = LogLevel.Information, Message = "Compacted stream {Stream}: generation {Generation}, snapshot [{Start}, {End})")]
    private static partial void LogCompacted(ILogger logger, string stream, long generation, long start, long end);

    [LoggerMessage(EventId = LogEvents.SnapshotFilesRemoved, Level = LogLevel.Information, Message = "Removed {Count} snapshot file(s) that no committed compaction names")]
    private static partial void LogSnapshotsRemoved(ILogger logger, int count);
}
