namespace DurableStreams.Core.Compaction;

/// <summary>The compaction rules every store shares: when a compaction is due, whether a commit may apply, what forks see.</summary>
public static class CompactionRules
{
    /// <summary>
    /// Whether a stream is due for compaction under <paramref name="policy"/>: something was appended since the last
    /// compaction (<paramref name="tail"/> past <paramref name="compactedEnd"/>), and the retained bytes are at least
    /// <see cref="CompactionPolicy.MinBytes"/> and at least <see cref="CompactionPolicy.MinRatio"/> times the last
    /// snapshot (<paramref name="compactedEnd"/> minus <paramref name="retainedStart"/>, 0 before the first).
    /// </summary>
    public static bool IsDue(CompactionPolicy policy, long retainedStart, long tail, long compactedEnd)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (tail <= compactedEnd || tail <= retainedStart)
        {
            return false;
        }
        var retained = tail - retainedStart;
        var lastSnapshot = Math.Max(0, compactedEnd - retainedStart);
        return retained >= policy.MinBytes && retained >= Math.Max(1.0, policy.MinRatio) * lastSnapshot;
    }

    /// <summary>
    /// The start a fork sees of a source whose effective retained start is <paramref name="effectiveStart"/> and whose
    /// last compaction ended at <paramref name="compactedEnd"/>: a snapshot is the source's own rewrite of its history,
    /// not the history a fork branched from, so forks never read below the compacted end.
    /// </summary>
    public static long ForkFloor(long effectiveStart, long compactedEnd) => Math.Max(effectiveStart, compactedEnd);

    /// <summary>
    /// Whether <paramref name="commit"/> may apply to a stream whose own retained start, generation, committed tail and
    /// kind are as given (asked under the stream's lock, before anything is written).
    /// <paramref name="isBoundary"/> tells whether <see cref="CompactionCommit.End"/> is a message boundary (or the tail).
    /// </summary>
    public static CompactionCommitStatus CheckCommit(CompactionCommit commit, bool isJson, bool isFork, long retainedStart, long generation, long committedTail, bool isBoundary)
    {
        ArgumentNullException.ThrowIfNull(commit);
        if (!isJson || isFork)
        {
            return CompactionCommitStatus.NotApplicable;
        }
        if (commit.ExpectedStart != retainedStart || commit.ExpectedGeneration != generation)
        {
            return CompactionCommitStatus.Conflict;
        }
        var lengths = 0L;
        foreach (var length in commit.MessageLengths)
        {
            if (length <= 0)
            {
                return CompactionCommitStatus.Invalid;
            }
            lengths += length;
        }
        return commit.End > committedTail || commit.End <= commit.ExpectedStart || !isBoundary
            || commit.Snapshot.IsEmpty || lengths != commit.Snapshot.Length
            || commit.Snapshot.Length >= commit.End - commit.ExpectedStart
            ? CompactionCommitStatus.Invalid
            : CompactionCommitStatus.Committed;
    }
}
