using System.Collections.Concurrent;
using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Core.Memory;
using DurableStreams.Protocol;

namespace DurableStreams.Server.Tests.Infrastructure;

/// <summary>
/// A memory store with a stand-in for compaction, for the server's side of it: a commit moves the stream's offset space
/// (generation + 1, compacted end = the commit's end) without rewriting bytes, and every offset the store returns is
/// stamped with the generation while reads check a requested offset against the space (<see cref="ReadRules.CheckGeneration"/>),
/// as a real store does. Internal so the wrapper check (StoreWrapperTests) does not apply: it wraps nothing it is given.
/// </summary>
internal sealed class GenerationStore : IStreamStore, IStreamCompaction
{
    private readonly MemoryStreamStore _inner = new();
    private readonly ConcurrentDictionary<string, OffsetSpace> _spaces = new(StringComparer.Ordinal);
    private int _commits;

    /// <summary>Commits so far.</summary>
    public int Commits => Volatile.Read(ref _commits);

    /// <summary>When set, a commit waits for it (after <see cref="CommitEntered"/> completes).</summary>
    public TaskCompletionSource? HoldCommit { get; set; }

    /// <summary>Completed when a commit starts.</summary>
    public TaskCompletionSource CommitEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Moves the stream's offset space as a committed compaction ending at <paramref name="end"/> would.</summary>
    public OffsetSpace Compact(string name, long end) =>
        _spaces.AddOrUpdate(name, _ => new OffsetSpace(1, end), (_, space) => new OffsetSpace(space.Generation + 1, end));

    private OffsetSpace Space(string name) => _spaces.TryGetValue(name, out var space) ? space : OffsetSpace.Initial;

    private StoredStreamInfo? Stamp(string name, StoredStreamInfo? info)
    {
        if (info is null)
        {
            return null;
        }
        var space = Space(name);
        return info with
        {
            OffsetGeneration = space.Generation,
            CompactedEnd = new StreamOffset(space.CompactedEnd) { Generation = space.Generation },
            Tail = info.Tail.InGeneration(space.Generation),
            RetainedStart = info.RetainedStart.InGeneration(space.Generation),
        };
    }

    public IStreamChangeFeed Changes => _inner.Changes;

    public ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default) =>
        _inner.CreateAsync(name, request, cancellationToken);

    public async ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default)
    {
        var result = await _inner.AppendAsync(name, request, cancellationToken);
        return result with { NextOffset = result.NextOffset.InGeneration(Space(name).Generation) };
    }

    /// <summary>Called before every read (the server tests put this store in place of the harness's ObservedStore).</summary>
    public Action<string>? BeforeRead { get; set; }

    public async ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default)
    {
        BeforeRead?.Invoke(name);
        var space = Space(name);
        var offset = request.Offset;
        if (offset.Kind == OffsetKind.At)
        {
            var check = ReadRules.CheckGeneration(offset.Offset, space);
            if (check != ReadStatus.Ok)
            {
                var metadata = await _inner.GetMetadataAsync(name, cancellationToken);
                return new ReadResult { Status = check, Info = Stamp(name, metadata.Info) };
            }
            offset = OffsetQuery.At(new StreamOffset(offset.Offset.Position));
        }
        var read = await _inner.ReadAsync(name, request with { Offset = offset }, cancellationToken);
        return new ReadResult
        {
            Status = read.Status,
            Info = Stamp(name, read.Info),
            Start = read.Start.InGeneration(space.Generation),
            Next = read.Next.InGeneration(space.Generation),
            UpToDate = read.UpToDate,
            Closed = read.Closed,
            Chunks = read.Chunks,
            Length = read.Length,
            Release = read.Dispose,
        };
    }

    public async ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default)
    {
        var result = await _inner.GetMetadataAsync(name, cancellationToken);
        return result with { Info = Stamp(name, result.Info) };
    }

    public ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default) =>
        _inner.DeleteAsync(name, cancellationToken);

    public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _inner.WaitAsync(name, new StreamOffset(offset.Position), timeout, cancellationToken);

    public async ValueTask<CompactionCommitResult> CommitCompactionAsync(string name, CompactionCommit commit, CancellationToken cancellationToken = default)
    {
        CommitEntered.TrySetResult();
        if (HoldCommit is { } hold)
        {
            await hold.Task.WaitAsync(cancellationToken);
        }
        if (Space(name).Generation != commit.ExpectedGeneration)
        {
            return new CompactionCommitResult(CompactionCommitStatus.Conflict);
        }
        Interlocked.Increment(ref _commits);
        Compact(name, commit.End);
        var metadata = await GetMetadataAsync(name, cancellationToken);
        return new CompactionCommitResult(CompactionCommitStatus.Committed, metadata.Info);
    }

    public ValueTask DisposeAsync() => _inner.DisposeAsync();
}
