using DurableStreams.Core.Local;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace DurableStreams.Storage.Files;

/// <summary>
/// Retention (issue 18): the retained start lives in the stream's <c>state</c> record (version 3) and moves through the
/// same group commit as every other state change, with the deletion of the frame records and append-time samples below
/// it; once that record is durable the start is published, and only then are the data file's pages below it released
/// (hole punching) and the in-memory frame index trimmed. Append times are sampled only for streams whose policy has a
/// maximum age, logged with the append that they describe.
/// </summary>
public sealed partial class FileStreamStore : IStreamRetention
{
    /// <summary>The unit the data file's storage is released in; a page straddling the start is kept until the start passes it.</summary>
    private const long PageBytes = 4096;

    /// <summary>The most one hole-punching call releases (a bound on how long an append to the stream waits for it).</summary>
    private const long PunchSliceBytes = 16L << 20;

    private int _holePunchWarned;

    /// <inheritdoc/>
    public async ValueTask<RetentionResult> ApplyRetentionAsync(string name, RetentionPolicy policy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var (stream, _) = Find(name, touch: false);
        if (stream is null)
        {
            return new RetentionResult(RetentionStatus.NotFound);
        }
        long current;
        long planned;
        Task? commit = null;
        var unloaded = false;
        lock (stream.Gate)
        {
            if (stream.Unloaded)
            {
                unloaded = true;
                current = planned = 0;
            }
            else if (stream.Removed || stream.SoftDeleted)
            {
                return new RetentionResult(RetentionStatus.NotFound);
            }
            else
            {
                current = stream.PendingRetainedStart;
                planned = current;
                // A stream still being created, or failed closed, or whose compaction is being committed (its frame index
                // still holds the replaced prefix), is left alone (its next pass decides).
                if (stream.Created.IsCompleted && !stream.Corrupt && policy.DropsData && stream.PendingCompacted == stream.Compacted)
                {
                    var tail = stream.Committed.Tail;
                    var times = policy.MaxAge is null ? null : TimesOf(stream);
                    planned = RetentionRules.PlanStart(policy, _time.GetUtcNow(), current, tail, times,
                        new ChainBoundaries<DiskStream, FrameBoundaries>(stream, tail, new FrameBoundaries(this)));
                }
                if (planned > current)
                {
                    commit = QueueRetainedStart(stream, planned);
                }
            }
        }
        if (unloaded)
        {
            // Unloaded since the lookup (it was idle): the name's current entry is the one to trim.
            return await ApplyRetentionAsync(name, policy, cancellationToken);
        }
        if (commit is not null)
        {
            // Outside the gate: durable first; OnCommitted publishes the start before anything is freed.
            _committer.Drive();
            try
            {
                await commit;
            }
            catch (Exception) when (stream.Removed || stream.SoftDeleted)
            {
                // Deleted while the start was being made durable: its records and file are gone with it.
                return new RetentionResult(RetentionStatus.NotFound);
            }
        }
        var start = stream.RetainedStart;
        var freed = Free(stream, start);
        return new RetentionResult(
            planned > current ? RetentionStatus.Trimmed : RetentionStatus.Unchanged,
            new StreamOffset(start),
            planned > current ? planned - current : 0,
            freed);
    }

    /// <summary>
    /// Queues the state record with the new retained start (and the tail, closure and Stream-Seq the writer state has
    /// reached: appends queued earlier commit in the same or an earlier batch), plus the deletion of the frame records and
    /// samples below it. Call under the gate. A failed commit rolls the stream back like a failed append.
    /// </summary>
    private Task QueueRetainedStart(DiskStream stream, long start)
    {
        stream.PendingRetainedStart = start;
        var encoded = Records.EncodeState(stream.Pending, start, stream.PendingCompacted);
        var generation = stream.Generation;
        var id = stream.Id;
        var work = new CommitWork
        {
            IsValid = stream.StillCurrent(),
            Apply = w =>
            {
                w.PutState(id, encoded);
                w.DropBelow(id, start);
            },
            OnCommitted = () =>
            {
                lock (stream.Gate)
                {
                    if (start > stream.RetainedStart)
                    {
                        stream.RetainedStart = start;
                    }
                }
            },
            OnFailed = _ => Rollback(stream, generation),
        };
        var commit = _committer.Enqueue(work, callerDrives: true);
        stream.LastCommit = commit;
        return commit;
    }

    /// <summary>
    /// Releases what lies below the published start <paramref name="start"/>: frames and samples in memory, then the
    /// data file's whole pages (its own data only; a fork's inherited range belongs to its source). Returns the bytes
    /// of file released now. Pages below what this process already released are not punched again; after a restart
    /// everything below the start is punched once more, which finishes a pass a crash interrupted.
    /// </summary>
    private long Free(DiskStream stream, long start)
    {
        if (Faults.SkipFree)
        {
            return 0;
        }
        long dead;
        lock (stream.Gate)
        {
            stream.Frames?.DropBelow(start);
            stream.Times?.DropBelow(start);
            // A compacted stream's data file is dead below its compacted end (the snapshot file holds that range):
            // this finishes a compaction's release that a crash interrupted.
            dead = Math.Max(start, stream.Compacted.End);
        }
        return PunchBelow(stream, dead);
    }

    /// <summary>
    /// Releases the data file's whole pages below logical position <paramref name="start"/> (its own data only).
    /// Returns the bytes of file released now.
    /// </summary>
    private long PunchBelow(DiskStream stream, long start)
    {
        SafeFileHandle? handle = null;
        var referenced = false;
        long? from;
        long to;
        lock (stream.Gate)
        {
            from = stream.FreedBelow is { } freed ? Math.Max(freed, stream.BasePosition) - stream.BasePosition : null;
            to = (Math.Max(start, stream.BasePosition) - stream.BasePosition) / PageBytes * PageBytes;
            if (to <= (from ?? 0) || stream.Removed || !System.IO.File.Exists(stream.FilePath))
            {
                return 0;
            }
            try
            {
                handle = HandleOf(stream);
            }
            catch (IOException)
            {
                return 0;
            }
            handle.DangerousAddRef(ref referenced);
        }
        long released;
        try
        {
            // The first pass since start-up starts where the file's data starts: below that, an earlier pass (perhaps
            // one a crash interrupted) released it already.
            var first = from ?? Math.Min(NativeIo.FirstDataOffset(handle), to);
            // Page-aligned at both ends: the range below 'first' was released already (or is the first page).
            var alignedFrom = first / PageBytes * PageBytes;
            released = to - first;
            // In slices: the file system holds the file's lock while it punches, and appends to the stream wait for it.
            for (var offset = alignedFrom; released > 0 && offset < to; offset += PunchSliceBytes)
            {
                if (!NativeIo.PunchHole(handle, offset, Math.Min(PunchSliceBytes, to - offset)))
                {
                    if (Interlocked.Exchange(ref _holePunchWarned, 1) == 0)
                    {
                        LogHolePunchUnsupported(_logger, DataDirectory);
                    }
                    return 0;
                }
            }
        }
        finally
        {
            if (referenced)
            {
                handle.DangerousRelease();
            }
        }
        lock (stream.Gate)
        {
            stream.FreedBelow = Math.Max(stream.FreedBelow ?? 0, stream.BasePosition + to);
        }
        return released;
    }

    /// <summary>Test hook: the frame records and append-time samples LMDB holds for a stream (as of the last checkpoint).</summary>
    internal (int Frames, int Times) StoredRecordsOf(string name) =>
        _streams.TryGetValue(name, out var stream) ? _metadata.CountRecords(stream.Id) : default;

    /// <summary>Test hook: frames in a stream's in-memory index (loading it), and its append-time samples in memory.</summary>
    internal (int Frames, int Times) IndexedOf(string name)
    {
        var stream = _streams.TryGetValue(name, out var found) ? found : throw new KeyNotFoundException(name);
        lock (stream.Gate)
        {
            return (FramesOf(stream).Count, stream.Times?.Samples.Count ?? 0);
        }
    }

    /// <summary>Test hook and measurement: the bytes of a stream's data file that occupy disk (data extents).</summary>
    internal long AllocatedBytesOf(string name)
    {
        var stream = _streams.TryGetValue(name, out var found) ? found : throw new KeyNotFoundException(name);
        using var handle = System.IO.File.OpenHandle(stream.FilePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return NativeIo.DataBytes(handle);
    }

    /// <summary>The retention policy configured for the stream's name (resolved once).</summary>
    private RetentionPolicy PolicyOf(DiskStream stream) =>
        !_options.Retention.Any ? RetentionPolicy.KeepAll : stream.Policy ??= _options.Retention.Resolve(stream.Name);

    /// <summary>
    /// The stream's append-time samples, loaded from LMDB on first use (call under the gate, before the stream's first
    /// sample since start-up, so LMDB holds every sample the log does); null when its configured policy has no maximum
    /// age (nothing is recorded for it).
    /// </summary>
    private AppendTimes? TimesOf(DiskStream stream)
    {
        if (stream.Times is { } loaded)
        {
            return loaded;
        }
        if (PolicyOf(stream).MaxAge is not { } maxAge)
        {
            return null;
        }
        var times = new AppendTimes(RetentionRules.SampleInterval(maxAge));
        var samples = _metadata.LoadTimes(stream.Id);
        foreach (var (position, ticks) in samples)
        {
            if (position >= stream.RetainedStart)
            {
                times.Restore(new AppendTimes.Sample(position, new DateTimeOffset(ticks, TimeSpan.Zero)));
            }
        }
        if (times.Samples.Count > 0 && stream.Committed.Tail > times.Samples[^1].Position)
        {
            // The last append time is not stored: appends after the last sample came less than an interval after it
            // (a later one would have been sampled), so this bound keeps their data at least as long as it should be.
            times.RestoreLastAppend(times.Samples[^1].Time + times.Interval);
        }
        stream.Times = times;
        return times;
    }

    /// <summary>
    /// Records an append (or a create's body) starting at <paramref name="position"/> at <paramref name="now"/> when the
    /// stream's policy has a maximum age; true when a new sample is to be logged with it. Call under the gate.
    /// </summary>
    private bool RecordAppendTime(DiskStream stream, long position, DateTimeOffset now) =>
        TimesOf(stream) is { } times && times.Record(position, now);

    /// <summary>
    /// A read reached data that is not there (no frame, or bytes failing their checksum): when the owner's retained start
    /// has passed the position meanwhile, retention freed it under the read, which answers 410; otherwise it is damage.
    /// </summary>
    /// <remarks>
    /// Also a compaction published since the read began (<paramref name="since"/>, the store's compaction sequence then)
    /// replaced everything below its compacted end: the read chose bytes of the old offset space, and answers 410
    /// (or is retried against the new space).
    /// </remarks>
    private static bool DroppedUnderRead(DiskStream owner, long position, long since)
    {
        if (position < owner.RetainedStart)
        {
            return true;
        }
        lock (owner.Gate)
        {
            return owner.CompactionSequence > since && position < owner.Compacted.End;
        }
    }

    /// <summary>A read that raced retention: the range it planned was freed before it was copied (answered 410).</summary>
    private sealed class DroppedByRetentionException() : Exception("The range was dropped by retention during the read.");

    [LoggerMessage(EventId = LogEvents.HolePunchUnsupported, Level = LogLevel.Warning, Message = "The file system of {Directory} cannot release a data file's pages (hole punching); retention moves retained starts but returns no disk space")]
    private static partial void LogHolePunchUnsupported(ILogger logger, string directory);
}
