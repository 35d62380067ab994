using DurableStreams.Core.Compaction;
using DurableStreams.Core.Live;
using DurableStreams.Core.Local;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;

namespace DurableStreams.Core.Memory;

/// <summary>
/// The in-memory store: fast, and gone on restart. Appends and reads take only their stream's lock; creating,
/// deleting and expiring take one structure lock because they change fork reference counts across streams.
/// </summary>
public sealed class MemoryStreamStore : IStreamStore, IStreamCatalog, IDirectReadStore, IStreamRetention, IStreamCompaction
{
    private readonly StreamTable<InMemoryStream> _streams = new();
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
    public int Count => _streams.LiveCount;

    /// <inheritdoc/>
    public IReadOnlyList<string> ListStreamNames() => _streams.LiveNames();

    public ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        lock (_structure)
        {
            if (_streams.TryGetValue(name, out var existing))
            {
                if (CreateRules.CheckExisting(request, existing.AsExisting(now), out var expire) is { } answer)
                {
                    return new(answer);
                }
                if (expire)
                {
                    ExpireLocked(existing);
                }
            }
            InMemoryStream? source = null;
            if (request.Fork is { } fork)
            {
                _streams.TryGetValue(fork.SourceName, out source);
            }
            var decision = ForkChain.EvaluateCreate(request, source, default(LogIndex), Limits, now);
            if (decision.ExpireSource)
            {
                ExpireLocked(source!);
            }
            if (!decision.ShouldCreate)
            {
                return new(decision.Result);
            }
            var stream = new InMemoryStream(name, Interlocked.Increment(ref _nextIncarnation), decision.State, source, decision.ForkPosition, NewAppendTimes(name))
            {
                LastAccessTicks = now.UtcTicks,
            };
            // Everything the stream starts with (inherited or in the body) was appended by now.
            stream.Times?.Record(decision.ForkPosition, now);
            foreach (var message in decision.Messages)
            {
                // Copied in: the request body is borrowed from the caller.
                stream.Log.Append(message.Span);
            }
            if (source is not null)
            {
                source.RefCount++;
            }
            _streams.Set(stream);
            if (_changes.HasListeners)
            {
                _changes.Publish(new StreamChanged(StreamChangeKind.Created, name, new StreamOffset(decision.State.Tail), now) { ContentType = decision.State.ContentType, ForkedFrom = source?.Name });
            }
            return new(new CreateStreamResult(CreateStatus.Created, stream.Snapshot()));
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
                return new(Stamped(decision.Result, stream));
            }
            var written = 0L;
            var appendStart = stream.State.Tail;
            if (decision.TryGetJsonValues(out var values))
            {
                // JSON: each value is copied once, straight from the borrowed body, with its comma.
                foreach (var value in values)
                {
                    stream.Log.Append(value.Span, ","u8);
                    written += value.Length + 1;
                }
            }
            else
            {
                foreach (var message in decision.Messages)
                {
                    // Copied in: the request body is borrowed from the caller's buffer.
                    stream.Log.Append(message.Span);
                    written += message.Length;
                }
            }
            var result = AppendRules.Apply(stream.State, request, written, now);
            stream.Times?.Record(appendStart, now);
            stream.Signal.Publish();
            Raise(stream.State.Closed ? StreamChangeKind.Closed : StreamChangeKind.Appended, stream, now);
            return new(Stamped(result, stream));
        }
    }

    public ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
    {
        var (stream, status) = Find(name, touch: true);
        if (stream is null)
        {
            return new(ReadResult.Failed(status));
        }
        // A compaction can commit between resolving the start and gathering (each takes the gate on its own): the info
        // is taken first, so its generation is the one the bytes are gathered in (Gather refuses bytes a later
        // compaction replaced), and a read from -1 that lost that race to the stream's own compaction starts again at
        // the new retained start (one that lost it to retention answers 410, as before).
        for (var attempt = 0; ; attempt++)
        {
            var info = stream.Snapshot();
            var startStatus = stream.ResolveRead(request.Offset, default(LogIndex), out var start, out var tail, out var closed);
            if (startStatus == ReadStatus.OffsetUnaligned && ReplacedMeanwhile(stream, request.Offset.Offset))
            {
                // The boundary check ran against a snapshot committed after the start was resolved: the offset's data is gone.
                startStatus = ReadStatus.BeforeRetainedStart;
            }
            if (startStatus != ReadStatus.Ok)
            {
                return new(startStatus == ReadStatus.BeforeRetainedStart ? BeforeRetainedStart(stream) : ReadResult.Failed(startStatus));
            }
            AfterReadResolved?.Invoke(name);
            var chunks = new List<ReadOnlyMemory<byte>>();
            var end = start;
            if (request.Offset.Kind != OffsetKind.Now)
            {
                var budget = (long)Math.Max(1, request.MaxBytes);
                end = Gather(stream, start, tail, ref budget, stream.IsJson, chunks, info.OffsetGeneration);
                if (end < 0)
                {
                    if (request.Offset.Kind == OffsetKind.Beginning && attempt < MaxReadAttempts && stream.Snapshot().OffsetGeneration != info.OffsetGeneration)
                    {
                        continue;
                    }
                    // Retention or a compaction moved the start past the read after it was resolved.
                    return new(BeforeRetainedStart(stream));
                }
            }
            return new(ReadResult.Served(info, start, end, tail, closed, chunks));
        }
    }

    public ValueTask<ReadStatus> ReadIntoAsync(string name, long position, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        var (stream, status) = Find(name, touch: true);
        if (stream is null)
        {
            return new(status);
        }
        if (stream.CheckRange(position, destination.Length) is not ReadStatus.Ok and var rangeStatus)
        {
            return new(rangeStatus);
        }
        // Segment references are taken under the gates; the bytes (never changed once added) are copied outside them.
        var chunks = new List<ReadOnlyMemory<byte>>();
        var budget = (long)destination.Length;
        if (Gather(stream, position, position + destination.Length, ref budget, wholeMessages: false, chunks, AnyGeneration) < 0)
        {
            return new(ReadStatus.BeforeRetainedStart);
        }
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
        return new(stream is null ? new MetadataResult(status) : new MetadataResult(ReadStatus.Ok, stream.Snapshot()));
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

    /// <inheritdoc/>
    /// <remarks>
    /// Under the stream's gate: plans the start with <see cref="RetentionRules.PlanStart"/> (from the effective start, so
    /// a fork never reports a trim its source already made), publishes it, then drops the whole blocks, append starts
    /// and samples below it. Readers gather under the same gate, so none sees a dropped block; slices handed out before
    /// stay valid.
    /// </remarks>
    public ValueTask<RetentionResult> ApplyRetentionAsync(string name, RetentionPolicy policy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        var (stream, _) = Find(name, touch: false);
        if (stream is null)
        {
            return new(new RetentionResult(RetentionStatus.NotFound));
        }
        var now = _time.GetUtcNow();
        lock (stream.Gate)
        {
            if (stream.Removed || stream.SoftDeleted)
            {
                return new(new RetentionResult(RetentionStatus.NotFound));
            }
            var current = stream.EffectiveRetainedStart;
            var tail = stream.State.Tail;
            var start = policy.DropsData
                ? RetentionRules.PlanStart(policy, now, current, tail, stream.Times, new ChainBoundaries<InMemoryStream, LogIndex>(stream, tail, default))
                : current;
            if (start <= current)
            {
                return new(new RetentionResult(RetentionStatus.Unchanged, new StreamOffset(stream.RetainedStart)));
            }
            stream.RetainedStart = start;
            var freed = stream.Log.DropBelow(start);
            stream.Times?.DropBelow(start);
            return new(new RetentionResult(RetentionStatus.Trimmed, new StreamOffset(start), start - current, freed));
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Under the stream's gate: checks the commit (<see cref="CompactionRules.CheckCommit"/>), then replaces the log's
    /// prefix by the snapshot (<see cref="MessageLog.ReplacePrefix"/>) and publishes the retained start and the new
    /// offset space together. Reads gather under the same gate and refuse bytes of a generation they did not resolve
    /// in, so none mixes the two sides; appends wait only for this swap.
    /// </remarks>
    public ValueTask<CompactionCommitResult> CommitCompactionAsync(string name, CompactionCommit commit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commit);
        var (stream, _) = Find(name, touch: false);
        if (stream is null)
        {
            return new(new CompactionCommitResult(CompactionCommitStatus.NotFound));
        }
        lock (stream.Gate)
        {
            if (stream.Removed || stream.SoftDeleted)
            {
                return new(new CompactionCommitResult(CompactionCommitStatus.NotFound));
            }
            var tail = stream.State.Tail;
            var space = stream.Space;
            var log = stream.Log;
            var isBoundary = commit.End == tail || (commit.End > log.Retained && commit.End < log.End && log.IsMessageStart(commit.End));
            var status = CompactionRules.CheckCommit(commit, stream.IsJson, stream.Source is not null, stream.RetainedStart, space.Generation, tail, isBoundary);
            if (status != CompactionCommitStatus.Committed)
            {
                return new(new CompactionCommitResult(status));
            }
            var freed = log.ReplacePrefix(commit.End, commit.Snapshot, commit.MessageLengths);
            stream.RetainedStart = commit.SnapshotStart;
            stream.Space = new OffsetSpace(space.Generation + 1, commit.End);
            stream.Times?.DropBelow(commit.SnapshotStart);
            return new(new CompactionCommitResult(CompactionCommitStatus.Committed, stream.Snapshot(), freed));
        }
    }

    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _streams.WaitAsync(name, offset, timeout, _time.GetUtcNow(), _deadlines, CancellationToken.None, cancellationToken);

    /// <summary>The wait registers on both tokens: no linked token source per waiting reader.</summary>
    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken stopToken, CancellationToken cancellationToken) =>
        _streams.WaitAsync(name, offset, timeout, _time.GetUtcNow(), _deadlines, stopToken, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _sweeper.DisposeAsync();
        _deadlines.Dispose();
        await _changes.DisposeAsync();
    }

    /// <summary>Block bytes the stream's own data holds (for tests of what retention frees); 0 for a missing stream.</summary>
    internal long AllocatedBytes(string name) =>
        _streams.TryGetValue(name, out var stream) ? LockedCapacity(stream) : 0;

    private static long LockedCapacity(InMemoryStream stream)
    {
        lock (stream.Gate)
        {
            return stream.Log.Capacity;
        }
    }

    /// <summary>Called by a read between resolving its start and gathering its bytes, for tests that race a compaction there.</summary>
    internal Action<string>? AfterReadResolved { get; set; }

    /// <summary>The stream's lock, for tests that hold it to order a read against a trim.</summary>
    internal object GateOf(string name) => _streams.TryGetValue(name, out var stream) ? stream.Gate : throw new KeyNotFoundException(name);

    /// <summary>True when the stream recorded append times (its policy has an age bound); for tests.</summary>
    internal bool RecordsAppendTimes(string name) => _streams.TryGetValue(name, out var stream) && stream.Times is not null;

    /// <summary>Append-time samples for a stream whose policy has an age bound; null (record nothing) otherwise.</summary>
    private AppendTimes? NewAppendTimes(string name) =>
        _options.Retention.Any && _options.Retention.Resolve(name).MaxAge is { } maxAge
            ? new AppendTimes(RetentionRules.SampleInterval(maxAge))
            : null;

    /// <summary>Reads from -1 that lost a race with compactions this many times in a row answer 410 (start again).</summary>
    private const int MaxReadAttempts = 4;

    /// <summary>For <see cref="Gather"/>: serve the bytes whatever the generation (positioned reads of binary streams).</summary>
    private const long AnyGeneration = -1;

    /// <summary>For <see cref="Gather"/>: a source's bytes, which a fork never reads below the source's compacted end.</summary>
    private const long SourceGeneration = -2;

    /// <summary>
    /// True when <paramref name="offset"/> now lies below the stream's retained start, or (an earlier generation's) below
    /// its compacted end: a compaction (of the stream or its source) committed while the read was being resolved.
    /// </summary>
    private static bool ReplacedMeanwhile(InMemoryStream stream, StreamOffset offset)
    {
        var info = stream.Snapshot();
        return offset.Position < info.RetainedStart.Position || ReadRules.CheckGeneration(offset, info.Space) == ReadStatus.BeforeRetainedStart;
    }

    /// <summary>An append's answer with its next offset in the stream's current generation (call under the gate).</summary>
    private static AppendStreamResult Stamped(AppendStreamResult result, InMemoryStream stream) =>
        result with { NextOffset = result.NextOffset.InGeneration(stream.Space.Generation) };

    private static ReadResult BeforeRetainedStart(InMemoryStream stream) =>
        new() { Status = ReadStatus.BeforeRetainedStart, Info = stream.Snapshot() };

    private CreateLimits Limits => new(_options.MaxJsonDepth, _options.MaxMessagesPerAppend, _options.MaxForkDepth);

    private (InMemoryStream? Stream, ReadStatus Status) Find(string name, bool touch)
    {
        var found = _streams.Find(name, touch, _time.GetUtcNow(), out var expired);
        if (expired is not null)
        {
            lock (_structure)
            {
                ExpireLocked(expired);
            }
        }
        return found;
    }

    /// <summary>Deletes (or soft-deletes) under the structure lock, cascading to sources nobody needs any more.</summary>
    private void DeleteLocked(InMemoryStream stream)
    {
        if (stream.RefCount > 0)
        {
            stream.MarkSoftDeleted();
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
            _streams.TryRemove(stream);
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
            var tail = kind is StreamChangeKind.Appended or StreamChangeKind.Closed ? new StreamOffset(stream.State.Tail) { Generation = stream.Space.Generation } : default;
            _changes.Publish(new StreamChanged(kind, stream.Name, tail, now));
        }
    }

    private void Remove(InMemoryStream stream)
    {
        var current = stream;
        while (current is not null)
        {
            _streams.TryRemove(current);
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
        foreach (var stream in _streams.Expired(_time.GetUtcNow()))
        {
            lock (_structure)
            {
                ExpireLocked(stream);
            }
        }
    }

    /// <summary>Message boundaries in a memory stream's own data: the starts its message log keeps.</summary>
    private readonly struct LogIndex : IMessageIndex<InMemoryStream>
    {
        public bool IsMessageStart(InMemoryStream owner, long position) => owner.Log.IsMessageStart(position);

        public long MessageEnd(InMemoryStream owner, long position, long end) => position >= owner.Log.End ? end : owner.Log.MessageEnd(position);
    }

    /// <summary>
    /// Collects data in [<paramref name="position"/>, <paramref name="end"/>) within the byte budget, stitching a fork's
    /// inherited range from its source chain (walked in a loop: chains may be deep). JSON reads return whole messages
    /// only, at least one. Returns -1 when retention dropped part of the range after the read was resolved, or when a
    /// compaction replaced it: the stream's own bytes below its compacted end are served only in
    /// <paramref name="generation"/> (the one the read resolved in; <see cref="AnyGeneration"/> skips the check), and a
    /// source's never (<see cref="CompactionRules.ForkFloor"/>).
    /// </summary>
    private static long Gather(InMemoryStream stream, long position, long end, ref long budget, bool wholeMessages, List<ReadOnlyMemory<byte>> chunks, long generation)
    {
        if (stream.Source is null || position >= stream.BasePosition)
        {
            return GatherOwn(stream, position, end, ref budget, wholeMessages, chunks, generation);
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
        position = GatherOwn(current, position, partEnd, ref budget, wholeMessages, chunks, SourceGeneration);
        for (var i = parts.Count - 1; i >= 0; i--)
        {
            var (fork, forkEnd) = parts[i];
            if (position < Math.Min(forkEnd, fork.BasePosition) || budget <= 0)
            {
                // The budget ran out (or a message did not fit) before this fork's own data; or the range was dropped.
                return position;
            }
            position = GatherOwn(fork, position, forkEnd, ref budget, wholeMessages, chunks, fork == stream ? generation : SourceGeneration);
        }
        return position;
    }

    /// <summary>Collects the stream's own data in [<paramref name="position"/>, <paramref name="end"/>) within the budget.</summary>
    private static long GatherOwn(InMemoryStream stream, long position, long end, ref long budget, bool wholeMessages, List<ReadOnlyMemory<byte>> chunks, long generation)
    {
        lock (stream.Gate)
        {
            var log = stream.Log;
            var limit = Math.Min(end, log.End);
            if (position >= limit)
            {
                return position;
            }
            if (position < log.Retained)
            {
                // Retention dropped the range after the read resolved its start: refuse rather than serve a gap.
                return -1;
            }
            var space = stream.Space;
            if (position < space.CompactedEnd && generation != AnyGeneration && generation != space.Generation)
            {
                // A compaction replaced the range after the read resolved its start (or a fork reaches into its source's snapshot).
                return -1;
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
