using DurableStreams.Protocol;
using DurableStreams.Core;

namespace DurableStreams.Storage.Files;

public sealed partial class FileStreamStore
{
    /// <inheritdoc />
    public async ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var (stream, status) = Find(name, touch: true);
            if (stream is null)
            {
                return new AppendStreamResult(status == ReadStatus.Gone ? AppendStatus.Gone : AppendStatus.NotFound);
            }
            if (await AppendToAsync(stream, request) is { } result)
            {
                return result;
            }
            // Unloaded since the lookup (it was idle): the name's current entry takes the append.
        }
    }

    /// <summary>The append on a looked-up entry; null when the entry was unloaded before the append began.</summary>
    private async ValueTask<AppendStreamResult?> AppendToAsync(DiskStream stream, AppendRequest request)
    {
        while (true)
        {
            Task? waitFor = null;
            Task commit;
            AppendStreamResult result;
            lock (stream.Gate)
            {
                if (stream.Unloaded)
                {
                    return null;
                }
                if (stream.Removed || stream.SoftDeleted)
                {
                    return new AppendStreamResult(stream.SoftDeleted ? AppendStatus.Gone : AppendStatus.NotFound);
                }
                if (stream.Corrupt)
                {
                    return new AppendStreamResult(AppendStatus.StorageFailure);
                }
                var now = _time.GetUtcNow();
                var decision = AppendRules.Evaluate(stream.Pending, request, _options.MaxJsonDepth, _options.MaxMessagesPerAppend, now, _options.ProducerRetention);
                if (!decision.ShouldCommit)
                {
                    if (stream.LastCommit.IsCompleted)
                    {
                        return Stamped(stream, decision.Result);
                    }
                    // The rejection (or duplicate) rests on writes not yet durable: answer only once they are.
                    waitFor = stream.LastCommit;
                    result = default;
                    commit = Task.CompletedTask;
                }
                else
                {
                    Microsoft.Win32.SafeHandles.SafeFileHandle handle;
                    bool createdFile;
                    try
                    {
                        handle = HandleOf(stream, out createdFile);
                    }
                    catch (IOException)
                    {
                        // The data file vanished underneath us: fail closed rather than start an empty file.
                        stream.Corrupt = true;
                        LogCorrupt(_logger, stream.Name, stream.Committed.Tail);
                        return new AppendStreamResult(AppendStatus.StorageFailure);
                    }
                    var start = stream.Pending.Tail;
                    List<Frame> frames;
                    try
                    {
                        frames = WriteFrames(stream, handle, decision.Messages, start, Faults);
                    }
                    catch (IOException ex)
                    {
                        // Leave no partial record behind; the stream stays as it was.
                        TryTruncate(handle, start - stream.BasePosition);
                        if (createdFile)
                        {
                            CloseHandleLocked(stream);
                            System.IO.File.Delete(stream.FilePath);
                        }
                        return new AppendStreamResult(NativeIo.IsDiskFull(ex) ? AppendStatus.InsufficientStorage : AppendStatus.StorageFailure);
                    }
                    var written = frames.Count == 0 ? 0 : frames[^1].End - start;
                    // Forget idle producers now and then (amortised: one walk per stream per sweep period).
                    var expired = ProducerRules.SweepIfDue(stream.Pending, now, _options.ProducerRetention);
                    result = AppendRules.Apply(stream.Pending, request, written, now);
                    // O(1) in the stream's producers: the clone shares the immutable producer map, the state record
                    // holds no producers, and only the producer that changed is written.
                    var snapshot = stream.Pending.Clone();
                    var encoded = Records.EncodeState(snapshot, stream.PendingRetainedStart, stream.PendingCompacted);
                    // Streams whose policy has a maximum age: a (position, time) sample now and then, logged with the append.
                    var sampled = written > 0 && RecordAppendTime(stream, start, now);
                    var producerId = request.Producer?.Id;
                    var producerState = producerId is null ? null : snapshot.Producers[producerId];
                    var generation = stream.Generation;
                    var id = stream.Id;
                    var work = new CommitWork
                    {
                        IsValid = stream.StillCurrent(),
                        Apply = w =>
                        {
                            w.PutState(id, encoded);
                            if (expired is not null)
                            {
                                foreach (var gone in expired)
                                {
                                    w.DeleteProducer(id, gone);
                                }
                            }
                            if (producerState is not null)
                            {
                                w.PutProducer(id, producerId!, producerState);
                            }
                            foreach (var frame in frames)
                            {
                                w.PutFrame(id, frame);
                            }
                            if (sampled)
                            {
                                w.PutTime(id, start, now.UtcTicks);
                            }
                        },
                        OnCommitted = () => Publish(stream, snapshot, frames, created: false),
                        OnFailed = _ => Rollback(stream, generation),
                    };
                    AddData(work, stream, start, decision.Messages);
                    commit = _committer.Enqueue(work, callerDrives: true);
                    stream.LastCommit = commit;
                }
            }
            if (waitFor is not null)
            {
                await waitFor.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                continue;
            }
            // Outside the stream lock: commit on this thread when no batch is in flight (no thread hand-off).
            _committer.Drive();
            try
            {
                await commit;
                return Stamped(stream, result);
            }
            catch (Exception ex)
            {
                return new AppendStreamResult(NativeIo.IsDiskFull(ex) ? AppendStatus.InsufficientStorage : AppendStatus.StorageFailure);
            }
        }
    }

    /// <summary>Every offset the store returns carries the stream's current offset-space generation (issue 18).</summary>
    private static AppendStreamResult Stamped(DiskStream stream, AppendStreamResult result) =>
        result with { NextOffset = result.NextOffset.InGeneration(GenerationOf(stream)) };

    /// <summary>Writes messages as CRC frames at <paramref name="start"/>; returns the frames (not yet durable).</summary>
    private static List<Frame> WriteFrames(DiskStream stream, Microsoft.Win32.SafeHandles.SafeFileHandle handle, List<ReadOnlyMemory<byte>> messages, long start, FileStoreFaults faults)
    {
        var frames = new List<Frame>();
        var position = start;
        var buffers = new List<ReadOnlyMemory<byte>>(messages.Count);
        for (var m = 0; m < messages.Count; m++)
        {
            var message = messages[m];
            var remaining = message;
            do
            {
                var take = Math.Min(MaxFrameBytes, remaining.Length);
                var piece = remaining[..take];
                remaining = remaining[take..];
                // JSON messages each end at a boundary; other types only at the end of the append.
                var boundary = remaining.IsEmpty && (stream.IsJson || m == messages.Count - 1);
                frames.Add(new Frame(position, take, Crc32C.Compute(piece.Span), boundary));
                position += take;
            }
            while (!remaining.IsEmpty);
            buffers.Add(message);
        }
        if (buffers.Count > 0)
        {
            if (faults.BeforeWrite?.Invoke() is { } injected)
            {
                // Simulate a device that accepted part of the write before failing.
                RandomAccess.Write(handle, buffers[0][..(buffers[0].Length / 2)].Span, start - stream.BasePosition);
                throw injected;
            }
            RandomAccess.Write(handle, buffers, start - stream.BasePosition);
        }
        return frames;
    }

    private static void TryTruncate(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long length)
    {
        try
        {
            RandomAccess.SetLength(handle, length);
        }
        catch (IOException)
        {
            // The bytes past the pending tail are never referenced; recovery cuts them if this fails too.
        }
    }

    /// <summary>Logs the bytes written for <paramref name="messages"/> at <paramref name="start"/> with the work.</summary>
    private static void AddData(CommitWork work, DiskStream stream, long start, List<ReadOnlyMemory<byte>> messages)
    {
        var position = start - stream.BasePosition;
        foreach (var message in messages)
        {
            work.Data.Add((stream.Id, position, message));
            position += message.Length;
        }
    }

    /// <summary>
    /// Makes a commit visible. The frame index is loaded first if it never was: LMDB lags the commit log between
    /// checkpoints, but before a stream's first publish since start-up it holds all of the stream's frames.
    /// </summary>
    private void Publish(DiskStream stream, StreamState snapshot, List<Frame> frames, bool created)
    {
        lock (stream.Gate)
        {
            stream.Committed = snapshot;
            var loaded = FramesOf(stream);
            foreach (var frame in frames)
            {
                if (loaded.Count == 0 || frame.Start == loaded.End)
                {
                    loaded.Add(frame);
                }
            }
            stream.Signal.Publish();
            if (created)
            {
                Raise(StreamChangeKind.Created, stream, new StreamOffset(snapshot.Tail), snapshot.CreatedAt, snapshot.ContentType);
            }
            else
            {
                Raise(snapshot.Closed ? StreamChangeKind.Closed : StreamChangeKind.Appended, stream, new StreamOffset(snapshot.Tail), _time.GetUtcNow());
            }
        }
    }

    private static void Rollback(DiskStream stream, int generation)
    {
        lock (stream.Gate)
        {
            if (stream.Generation != generation)
            {
                return;
            }
            stream.Generation++;
            stream.Pending = stream.Committed.Clone();
            stream.PendingRetainedStart = stream.RetainedStart;
            stream.PendingCompacted = stream.Compacted;
            if (stream.Handle is { IsClosed: false } handle)
            {
                TryTruncate(handle, stream.Committed.Tail - stream.BasePosition);
            }
        }
    }
}
