using System.Collections.Concurrent;
using DurableStreams.Core.Live;
using DurableStreams.Protocol;

namespace DurableStreams.Core.Memory;

/// <summary>
/// The in-memory store: fast, and gone on restart. Appends and reads take only their stream's lock; creating,
/// deleting and expiring take one structure lock because they change fork reference counts across streams.
/// </summary>
public sealed class MemoryStreamStore : IStreamStore, IStreamCatalog, IDirectReadStore
{
    private readonly ConcurrentDictionary<string, InMemoryStream> _streams = new(StringComparer.Ordinal);
    private readonly object _structure = new();
    private readonly TimeProvider _time;
    private readonly MemoryStreamStoreOptions _options;
    private readonly DeadlineScheduler _deadlines;
    private readonly ITimer _sweeper;
    private readonly StreamChangeFeed _changes = new();
    private long _nextIncarnation;

    public MemoryStreamStore(MemoryStreamStoreOptions? options = null)
    {
        _options = options ?? new MemoryStreamStoreOptions();
        ProducerRules.ValidateRetention(_options.ProducerRetention);
        _time = _options.TimeProvider;
        _deadlines = new DeadlineScheduler(_time);
        // Incarnations differ across process lifetimes so ETags of a recreated stream never collide.
        _nextIncarnation = _time.GetUtcNow().ToUnixTimeMilliseconds() << 16;
        _sweeper = _time.CreateTimer(static s => ((MemoryStreamStore)s!).Sweep(), this, _options.SweepInterval, _options.SweepInterval);
    }

    /// <inheritdoc/>
    public IStreamChangeFeed Changes => _changes;

    /// <summary>Number of live (not soft-deleted) streams.</summary>
    public int Count => _streams.Values.Count(s => !s.SoftDeleted);

    /// <inheritdoc/>
    public IReadOnlyList<string> ListStreamNames() => _streams.Where(s => !s.Value.SoftDeleted).Select(s => s.Key).ToArray();

    public ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        lock (_structure)
        {
            if (_streams.TryGetValue(name, out var existing))
            {
                if (existing.SoftDeleted)
                {
                    return new(new CreateStreamResult(CreateStatus.SoftDeleted));
                }
                if (IsExpired(existing, now))
                {
                    ExpireLocked(existing);
                }
                else
                {
                    bool closed;
                    lock (existing.Gate)
                    {
                        closed = existing.State.Closed;
                    }
                    var matches = existing.State.Requested.IsMatchedBy(request, closed);
                    return new(new CreateStreamResult(matches ? CreateStatus.AlreadyExists : CreateStatus.ConfigurationConflict, Snapshot(existing)));
                }
            }

            InMemoryStream? source = null;
            var forkPosition = 0L;
            StreamOffset anchor = default;
            var contentType = request.ContentType ?? ContentTypes.Default;
            var ttl = request.TtlSeconds;
            var expiresAt = request.ExpiresAt;
            if (request.Fork is { } fork)
            {
                if (!_streams.TryGetValue(fork.SourceName, out source))
                {
                    return new(new CreateStreamResult(CreateStatus.SourceNotFound));
                }
                if (!source.SoftDeleted && IsExpired(source, now))
                {
                    ExpireLocked(source);
                    return new(new CreateStreamResult(CreateStatus.SourceNotFound));
                }
                var sourceStatus = ForkRules.CheckSource(source.SoftDeleted, source.State.ContentType, request.ContentType);
                if (sourceStatus != CreateStatus.Created)
                {
                    return new(new CreateStreamResult(sourceStatus));
                }
                if (ForkRules.CheckDepth(source.Depth, _options.MaxForkDepth) is not CreateStatus.Created and var depthStatus)
                {
                    return new(new CreateStreamResult(depthStatus, Limit: _options.MaxForkDepth));
                }
                contentType = source.State.ContentType;
                var sourceTail = TailOf(source);
                var status = ForkRules.ResolvePosition(fork, sourceTail, source.IsJson, p => IsBoundary(source, p), p => NextBoundary(source, p, sourceTail), out anchor, out forkPosition);
                if (status != CreateStatus.Created)
                {
                    return new(new CreateStreamResult(status));
                }
                ForkRules.InheritExpiry(ref ttl, ref expiresAt, source.State.TtlSeconds, source.State.ExpiresAt);
            }

            var bodyStatus = CreateRules.FrameBody(contentType, request.Body, _options.MaxJsonDepth, _options.MaxMessagesPerAppend, out var messages);
            if (bodyStatus != CreateStatus.Created)
            {
                return new(new CreateStreamResult(bodyStatus, Limit: bodyStatus == CreateStatus.TooManyMessages ? _options.MaxMessagesPerAppend : null));
            }
            var state = new StreamState
            {
                ContentType = contentType,
                TtlSeconds = ttl,
                ExpiresAt = expiresAt,
                CreatedAt = now,
                Tail = forkPosition,
                Closed = request.Closed,
                Requested = new StreamConfiguration(
                    contentType, request.TtlSeconds, request.ExpiresAt,
                    request.Fork?.SourceName, request.Fork is null ? null : anchor, request.Fork?.SubOffset ?? 0),
            };
            var stream = new InMemoryStream(name, Interlocked.Increment(ref _nextIncarnation), state, source, forkPosition)
            {
                LastAccessTicks = now.UtcTicks,
            };
            foreach (var message in messages)
            {
                // Copied in: the request body is borrowed from the caller.
                stream.Log.Append(message.Span);
                state.Tail += message.Length;
            }
            if (source is not null)
            {
                source.RefCount++;
            }
            _streams[name] = stream;
            if (_changes.HasListeners)
            {
                _changes.Publish(new StreamChanged(StreamChangeKind.Created, name, new StreamOffset(state.Tail), now) { ContentType = contentType, Forked = source is not null });
            }
            return new(new CreateStreamResult(CreateStatus.Created, Snapshot(stream)));
        }
    }

    public ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default)
    {
        var (stream, status) = Find(name, touch: true);
        if (stream is null)
        {
            return new(new AppendStreamResult(status == ReadStatus.Gone ? AppendStatus.Gone : AppendStatus.NotFound));
        }
        lock (stream.Gate)
        {
            if (stream.Removed || stream.SoftDeleted)
            {
                return new(new AppendStreamResult(stream.SoftDeleted ? AppendStatus.Gone : AppendStatus.NotFound));
            }
            var now = _time.GetUtcNow();
            ProducerRules.SweepIfDue(stream.State, now, _options.ProducerRetention);
            var decision = AppendRules.Evaluate(stream.State, request, _options.MaxJsonDepth, _options.MaxMessagesPerAppend, now, _options.ProducerRetention);
            if (!decision.ShouldCommit)
            {
                return new(decision.Result);
            }
            var written = 0L;
            foreach (var message in decision.Messages)
            {
                // Copied in: the request body is borrowed from the caller's buffer.
                stream.Log.Append(message.Span);
                written += message.Length;
            }
            var result = AppendRules.Apply(stream.State, request, written, now);
            stream.Signal.Publish();
            Raise(stream.State.Closed ? StreamChangeKind.Closed : StreamChangeKind.Appended, stream, now);
            return new(result);
        }
    }

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
            tail = stream.State.Tail;
            closed = stream.State.Closed;
        }
        var startStatus = ReadRules.ResolveStart(request.Offset, tail, stream.IsJson, p => IsBoundary(stream, p), out var start);
        if (startStatus != ReadStatus.Ok)
        {
            return new(ReadResult.Failed(startStatus));
        }
        var chunks = new List<ReadOnlyMemory<byte>>();
        var end = start;
        if (request.Offset.Kind != OffsetKind.Now)
        {
            var budget = (long)Math.Max(1, request.MaxBytes);
            end = Gather(stream, start, tail, ref budget, stream.IsJson, chunks);
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
        });
    }

    public ValueTask<ReadStatus> ReadIntoAsync(string name, long position, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        var (stream, status) = Find(name, touch: true);
        if (stream is null)
        {
            return new(status);
        }
        lock (stream.Gate)
        {
            if (position > stream.State.Tail - destination.Length)
            {
                return new(ReadStatus.OffsetBeyondTail);
            }
        }
        // Segment references are taken under the gates; the bytes (never changed once added) are copied outside them.
        var chunks = new List<ReadOnlyMemory<byte>>();
        var budget = (long)destination.Length;
        Gather(stream, position, position + destination.Length, ref budget, wholeMessages: false, chunks);
        var target = destination.Span;
        foreach (var chunk in chunks)
        {
            chunk.Span.CopyTo(target);
            target = target[chunk.Length..];
        }
        return new(target.IsEmpty ? ReadStatus.Ok : ReadStatus.OffsetBeyondTail);
    }

    public ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default)
    {
        var (stream, status) = Find(name, touch: false);
        return new(stream is null ? new MetadataResult(status) : new MetadataResult(ReadStatus.Ok, Snapshot(stream)));
    }

    public ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var (stream, status) = Find(name, touch: false);
        if (stream is null)
        {
            return new(new DeleteResult(status == ReadStatus.Gone ? DeleteStatus.Gone : DeleteStatus.NotFound));
        }
        lock (_structure)
        {
            if (stream.Removed)
            {
                return new(new DeleteResult(DeleteStatus.NotFound));
            }
            if (stream.SoftDeleted)
            {
                return new(new DeleteResult(DeleteStatus.Gone));
            }
            DeleteLocked(stream);
            return new(new DeleteResult(DeleteStatus.Deleted));
        }
    }

    public async ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (!_streams.TryGetValue(name, out var stream))
        {
            return WaitOutcome.Gone;
        }
        if (IsExpired(stream, _time.GetUtcNow()))
        {
            return WaitOutcome.Gone;
        }
        Task signal;
        lock (stream.Gate)
        {
            if (stream.Removed || stream.SoftDeleted)
            {
                return WaitOutcome.Gone;
            }
            if (stream.State.Tail > offset.Position || stream.State.Closed)
            {
                return WaitOutcome.Changed;
            }
            signal = stream.Signal.Current;
        }
        return await _deadlines.WaitForSignalAsync(signal, timeout, () => stream.Removed || stream.SoftDeleted, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _sweeper.DisposeAsync();
        _deadlines.Dispose();
        await _changes.DisposeAsync();
    }

    private (InMemoryStream? Stream, ReadStatus Status) Find(string name, bool touch)
    {
        if (!_streams.TryGetValue(name, out var stream))
        {
            return (null, ReadStatus.NotFound);
        }
        if (stream.SoftDeleted)
        {
            return (null, ReadStatus.Gone);
        }
        var now = _time.GetUtcNow();
        if (IsExpired(stream, now))
        {
            lock (_structure)
            {
                ExpireLocked(stream);
            }
            return (null, ReadStatus.NotFound);
        }
        if (touch)
        {
            Volatile.Write(ref stream.LastAccessTicks, now.UtcTicks);
        }
        return (stream, ReadStatus.Ok);
    }

    private static bool IsExpired(InMemoryStream stream, DateTimeOffset now) =>
        stream.State.IsExpired(now, new DateTimeOffset(Volatile.Read(ref stream.LastAccessTicks), TimeSpan.Zero));

    /// <summary>Deletes (or soft-deletes) under the structure lock, cascading to sources nobody needs any more.</summary>
    private void DeleteLocked(InMemoryStream stream)
    {
        if (stream.RefCount > 0)
        {
            stream.SoftDeleted = true;
        }
        else
        {
            Remove(stream);
        }
        lock (stream.Gate)
        {
            stream.Signal.Publish();
            Raise(StreamChangeKind.Deleted, stream, _time.GetUtcNow());
        }
    }

    /// <summary>
    /// Expires under the structure lock. An expired stream is absent to clients at once (its name can be reused); if
    /// forks still read through it, its bytes stay reachable from them until the last one lets go.
    /// </summary>
    private void ExpireLocked(InMemoryStream stream)
    {
        if (stream.Removed || stream.SoftDeleted)
        {
            return;
        }
        if (stream.RefCount > 0)
        {
            ((ICollection<KeyValuePair<string, InMemoryStream>>)_streams).Remove(new(stream.Name, stream));
            stream.Removed = true;
        }
        else
        {
            Remove(stream);
        }
        lock (stream.Gate)
        {
            stream.Signal.Publish();
            Raise(StreamChangeKind.Expired, stream, _time.GetUtcNow());
        }
    }

    /// <summary>Raises a committed change; call under the stream's gate, so changes of one stream are raised in order.</summary>
    private void Raise(StreamChangeKind kind, InMemoryStream stream, DateTimeOffset now)
    {
        if (_changes.HasListeners)
        {
            var tail = kind is StreamChangeKind.Appended or StreamChangeKind.Closed ? new StreamOffset(stream.State.Tail) : default;
            _changes.Publish(new StreamChanged(kind, stream.Name, tail, now));
        }
    }

    private void Remove(InMemoryStream stream)
    {
        var current = stream;
        while (current is not null)
        {
            ((ICollection<KeyValuePair<string, InMemoryStream>>)_streams).Remove(new(current.Name, current));
            current.Removed = true;
            var source = current.Source;
            // Continue up the chain only when the source is already deleted or expired and this was its last fork.
            if (source is null || --source.RefCount > 0 || !(source.SoftDeleted || source.Removed))
            {
                return;
            }
            current = source;
        }
    }

    private void Sweep()
    {
        var now = _time.GetUtcNow();
        foreach (var stream in _streams.Values)
        {
            if (stream.SoftDeleted || (stream.State.TtlSeconds is null && stream.State.ExpiresAt is null) || !IsExpired(stream, now))
            {
                continue;
            }
            lock (_structure)
            {
                ExpireLocked(stream);
            }
        }
    }

    private static StoredStreamInfo Snapshot(InMemoryStream stream)
    {
        lock (stream.Gate)
        {
            var s = stream.State;
            return new StoredStreamInfo(stream.Name, stream.Incarnation, s.ContentType, new StreamOffset(s.Tail), s.Closed, s.TtlSeconds, s.ExpiresAt, s.CreatedAt);
        }
    }

    private static long TailOf(InMemoryStream stream)
    {
        lock (stream.Gate)
        {
            return stream.State.Tail;
        }
    }

    /// <summary>
    /// The stream of <paramref name="stream"/>'s fork chain that stores <paramref name="position"/>: the first, going up
    /// from the stream, whose own data starts at or before it. <paramref name="limit"/> is where that stream's part of
    /// the chain ends (the fork position it was reached through), or <see cref="long.MaxValue"/> for the stream itself.
    /// A loop, not recursion: chains may be deep.
    /// </summary>
    private static InMemoryStream Owner(InMemoryStream stream, long position, out long limit)
    {
        limit = long.MaxValue;
        while (stream.Source is { } source && position < stream.BasePosition)
        {
            limit = stream.BasePosition;
            stream = source;
        }
        return stream;
    }

    /// <summary>The end of the message containing <paramref name="position"/> (or the tail when at the tail).</summary>
    private static long NextBoundary(InMemoryStream stream, long position, long tail)
    {
        var owner = Owner(stream, position, out var limit);
        var end = limit == long.MaxValue ? tail : limit;
        lock (owner.Gate)
        {
            return Math.Min(position >= owner.Log.End ? end : owner.Log.MessageEnd(position), end);
        }
    }

    /// <summary>True when <paramref name="position"/> starts a message (or is the start/tail) of the stream.</summary>
    private static bool IsBoundary(InMemoryStream stream, long position)
    {
        var owner = Owner(stream, position, out _);
        lock (owner.Gate)
        {
            if (position == owner.BasePosition || position == owner.State.Tail)
            {
                return true;
            }
            return owner.Log.IsMessageStart(position);
        }
    }

    /// <summary>
    /// Collects data in [<paramref name="position"/>, <paramref name="end"/>) within the byte budget, stitching a fork's
    /// inherited range from its source chain (walked in a loop: chains may be deep). JSON reads return whole messages
    /// only, at least one.
    /// </summary>
    private static long Gather(InMemoryStream stream, long position, long end, ref long budget, bool wholeMessages, List<ReadOnlyMemory<byte>> chunks)
    {
        if (stream.Source is null || position >= stream.BasePosition)
        {
            return GatherOwn(stream, position, end, ref budget, wholeMessages, chunks);
        }
        // The chain's parts of the range, from the stream up; each source's part ends where its fork begins.
        var parts = new List<(InMemoryStream Stream, long End)>();
        var current = stream;
        var partEnd = end;
        while (current.Source is { } source && position < current.BasePosition)
        {
            parts.Add((current, partEnd));
            partEnd = Math.Min(partEnd, current.BasePosition);
            current = source;
        }
        position = GatherOwn(current, position, partEnd, ref budget, wholeMessages, chunks);
        for (var i = parts.Count - 1; i >= 0; i--)
        {
            var (fork, forkEnd) = parts[i];
            if (position < Math.Min(forkEnd, fork.BasePosition) || budget <= 0)
            {
                // The budget ran out (or a message did not fit) before this fork's own data.
                return position;
            }
            position = GatherOwn(fork, position, forkEnd, ref budget, wholeMessages, chunks);
        }
        return position;
    }

    /// <summary>Collects the stream's own data in [<paramref name="position"/>, <paramref name="end"/>) within the budget.</summary>
    private static long GatherOwn(InMemoryStream stream, long position, long end, ref long budget, bool wholeMessages, List<ReadOnlyMemory<byte>> chunks)
    {
        lock (stream.Gate)
        {
            var log = stream.Log;
            var limit = Math.Min(end, log.End);
            if (position >= limit)
            {
                return position;
            }
            var reach = budget >= limit - position ? limit : position + budget;
            var stop = reach;
            if (wholeMessages)
            {
                stop = log.BoundaryAtOrBefore(reach);
                if (stop <= position)
                {
                    // Not even one whole message fits: the first message of a read is served whole anyway.
                    if (chunks.Count > 0)
                    {
                        return position;
                    }
                    stop = Math.Min(log.MessageEnd(position), limit);
                }
            }
            log.Slice(position, stop, chunks);
            budget -= stop - position;
            return stop;
        }
    }
}
