namespace DurableStreams.Core.Compaction;

/// <summary>
/// One compaction to commit: replace the stream's data from <see cref="ExpectedStart"/> to <see cref="End"/> by
/// <see cref="Snapshot"/>, placed so that it ends exactly at <see cref="End"/>.
/// </summary>
/// <param name="ExpectedStart">The stream's own retained start the snapshot was built from; the commit is refused
/// (<see cref="CompactionCommitStatus.Conflict"/>) if it moved meanwhile.</param>
/// <param name="ExpectedGeneration">The offset-space generation the snapshot was built in; refused if it changed.</param>
/// <param name="End">The end of the replaced prefix: a message boundary at or below the committed tail.</param>
/// <param name="Snapshot">The snapshot's messages in stored form (each <c>value,</c>), back to back; strictly shorter
/// than <c>End - ExpectedStart</c>.</param>
/// <param name="MessageLengths">The stored length of each snapshot message, in order; they sum to the snapshot's length.</param>
public sealed record CompactionCommit(long ExpectedStart, long ExpectedGeneration, long End, ReadOnlyMemory<byte> Snapshot, IReadOnlyList<int> MessageLengths)
{
    /// <summary>Where the snapshot starts, and so the stream's retained start once committed.</summary>
    public long SnapshotStart => End - Snapshot.Length;
}

/// <summary>What a store answered to <see cref="IStreamCompaction.CommitCompactionAsync"/>.</summary>
public enum CompactionCommitStatus
{
    /// <summary>The snapshot replaced the prefix: retained start, generation and compacted end moved.</summary>
    Committed,
    /// <summary>The stream does not exist (or is soft-deleted or expired).</summary>
    NotFound,
    /// <summary>The stream cannot be compacted: not JSON, or a fork (a fork's prefix is its source's data).</summary>
    NotApplicable,
    /// <summary>The retained start or generation moved since the snapshot was built; nothing changed (retry later).</summary>
    Conflict,
    /// <summary>The commit is malformed (end past the tail or not a boundary, snapshot not smaller, lengths wrong); nothing changed.</summary>
    Invalid,
}

/// <param name="Status">The outcome.</param>
/// <param name="Info">The stream after the commit (when <see cref="CompactionCommitStatus.Committed"/>).</param>
/// <param name="BytesFreed">Storage released by the commit (whole units, as for retention); may lag and be freed by a later retention pass.</param>
public readonly record struct CompactionCommitResult(CompactionCommitStatus Status, StoredStreamInfo? Info = null, long BytesFreed = 0);

/// <summary>
/// State-Protocol compaction, as every store implements it beside <see cref="IStreamStore"/> (issue 18). The rules —
/// what a snapshot holds, when compaction is due, which offsets stay valid — are <see cref="StateSnapshotBuilder"/>,
/// <see cref="CompactionRules"/> and <see cref="ReadRules.ResolveStart"/>; <see cref="StateCompactor"/> reads the
/// prefix through <see cref="IStreamStore.ReadAsync"/>, builds the snapshot and asks the store to commit it.
/// </summary>
/// <remarks>
/// The contract, for every store (checked by <see cref="CompactionRules.CheckCommit"/> under the stream's lock):
/// <list type="bullet">
/// <item>Atomic and durable: after a crash the stream holds either the old prefix (and the old retained start,
/// generation, compacted end) or the whole snapshot with the new ones, never a mix.</item>
/// <item>Once committed: the bytes of [<see cref="CompactionCommit.SnapshotStart"/>, <see cref="CompactionCommit.End"/>)
/// are the snapshot and its message boundaries are the snapshot's; the own retained start is the snapshot start; the
/// offset-space generation is one more (<see cref="StoredStreamInfo.OffsetGeneration"/>) and every offset the store
/// returns for the stream carries it; <see cref="StoredStreamInfo.CompactedEnd"/> is <see cref="CompactionCommit.End"/>.
/// Bytes at and after the end, the tail, closure and producers are untouched.</item>
/// <item>Appends and live readers wait for nothing but publishing the result. A read that raced the commit answers
/// what <see cref="ReadRules.CheckGeneration"/> says for its offset against the new space (410 for an old offset
/// below the end), never bytes of the other side.</item>
/// <item>Forks never read a compacted source below its compacted end (<see cref="CompactionRules.ForkFloor"/>): a fork
/// whose inherited range reaches into it answers 410 there, as for a range retention dropped.</item>
/// </list>
/// </remarks>
public interface IStreamCompaction
{
    /// <summary>Commits <paramref name="commit"/> for the stream <paramref name="name"/>, or says why not.</summary>
    ValueTask<CompactionCommitResult> CommitCompactionAsync(string name, CompactionCommit commit, CancellationToken cancellationToken = default);
}
