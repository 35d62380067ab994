using DurableStreams.Core;
using DurableStreams.Core.Local;

namespace DurableStreams.Storage.Files;

public sealed partial class FileStreamStore
{
    /// <inheritdoc />
    public async ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        DiskStream stream;
        List<Frame> frames;
        Task commit;
        await _structure.WaitAsync(cancellationToken);
        var release = true;
        try
        {
            if (_streams.TryGetValue(name, out var existing) && !existing.Created.IsCompleted)
            {
                // A concurrent PUT of the same name is still being made durable: answer against its outcome.
                _structure.Release();
                release = false;
                await existing.Created.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                return await CreateAsync(name, request, cancellationToken);
            }
            if (existing is not null)
            {
                if (CreateRules.CheckExisting(request, existing.AsExisting(now), out var expire) is { } answer)
                {
                    return answer;
                }
                if (expire)
                {
                    ExpireLocked(existing);
                }
            }

            DiskStream? source = null;
            if (request.Fork is { } fork && _streams.TryGetValue(fork.SourceName, out source) && source.LastCommit is { IsCompleted: false } pending)
            {
                // Fork at a committed position: let in-flight appends on the source land first.
                await pending.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            var decision = ForkChain.EvaluateCreate(request, source, new FrameBoundaries(this), Limits, now);
            if (decision.ExpireSource)
            {
                ExpireLocked(source!);
            }
            if (!decision.ShouldCreate)
            {
                return decision.Result;
            }
            var state = decision.State;
            var forkPosition = decision.ForkPosition;
            var messages = decision.Messages;
            // The stream starts empty at its fork position (its data file is made by the first write) and takes the
            // body's tail once the body is written.
            var bodyTail = state.Tail;
            state.Tail = forkPosition;
            var id = _nextId++;
            var meta = new StreamMeta(
                id, name, state.ContentType, state.TtlSeconds, state.ExpiresAt, now, state.Requested,
                source?.Id, forkPosition, SoftDeleted: false, Detached: false);
            stream = new DiskStream(meta, state, source, DataPath(id))
            {
                LastAccessTicks = now.UtcTicks,
                PersistedAccessTicks = now.UtcTicks,
                Frames = new FrameIndex(),
            };
            lock (stream.Gate)
            {
                frames = [];
                if (messages.Count > 0)
                {
                    try
                    {
                        frames = WriteFrames(stream, HandleOf(stream), messages, forkPosition, Faults);
                    }
                    catch (IOException ex)
                    {
                        CloseHandleLocked(stream);
                        System.IO.File.Delete(stream.FilePath);
                        return new CreateStreamResult(NativeIo.IsDiskFull(ex) ? CreateStatus.InsufficientStorage : CreateStatus.StorageFailure);
                    }
                }
                state.Tail = bodyTail;
                stream.Pending = state.Clone();
                // Readers see the initial body only once it is durable.
                var empty = state.Clone();
                empty.Tail = forkPosition;
                stream.Committed = empty;
            }
            var encodedState = Records.EncodeState(state);
            bool sampled;
            lock (stream.Gate)
            {
                // Its first sample is its creation, body or not: everything below the fork position (a fork's inherited
                // range) and the body were there by now. Logged with the creation.
                sampled = RecordAppendTime(stream, forkPosition, now);
            }
            var work = new CommitWork
            {
                Apply = w =>
                {
                    w.PutName(name, id);
                    w.PutMeta(meta);
                    w.PutState(id, encodedState);
                    foreach (var frame in frames)
                    {
                        w.PutFrame(id, frame);
                    }
                    if (sampled)
                    {
                        w.PutTime(id, forkPosition, now.UtcTicks);
                    }
                },
                OnCommitted = () => Publish(stream, state.Clone(), frames, created: true),
            };
            AddData(work, stream, forkPosition, messages);
            if (source is not null)
            {
                source.RefCount++;
            }
            _streams.Set(stream);
            _loaded[id] = stream;
            commit = _committer.Enqueue(work, callerDrives: true);
            stream.LastCommit = commit;
            stream.Created = commit;
        }
        finally
        {
            if (release)
            {
                _structure.Release();
            }
        }
        // Wait for durability outside the structure lock so creates of different streams share group commits.
        _committer.Drive();
        try
        {
            await commit;
        }
        catch (Exception ex)
        {
            await _structure.WaitAsync(CancellationToken.None);
            try
            {
                _streams.TryRemove(stream);
                _loaded.TryRemove(stream.Id, out _);
                stream.Removed = true;
                if (stream.Source is { } source)
                {
                    source.RefCount--;
                }
            }
            finally
            {
                _structure.Release();
            }
            WakeAll(stream);
            DeleteFile(stream);
            return new CreateStreamResult(NativeIo.IsDiskFull(ex) ? CreateStatus.InsufficientStorage : CreateStatus.StorageFailure);
        }
        return new CreateStreamResult(CreateStatus.Created, stream.Snapshot());
    }
}
