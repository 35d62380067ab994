using DurableStreams.Core.Compaction;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Compaction;

/// <summary>When a compaction is due, which commits may apply, and how offsets of earlier generations read.</summary>
public sealed class CompactionRulesTests
{
    private static readonly CompactionPolicy Policy = new() { MinBytes = 1000, MinRatio = 2 };

    [Theory]
    // Never compacted: due once the retained bytes reach MinBytes.
    [InlineData(0, 999, 0, false)]
    [InlineData(0, 1000, 0, true)]
    [InlineData(500, 1500, 0, true)]
    [InlineData(500, 1499, 0, false)]
    // After a compaction whose snapshot is [start, compactedEnd): due at MinRatio times the snapshot, and MinBytes.
    [InlineData(9000, 10_000, 10_000, false)]
    [InlineData(9000, 10_999, 10_000, false)]
    [InlineData(9000, 11_000, 10_000, true)]
    [InlineData(9800, 10_799, 10_000, false)]
    [InlineData(9800, 10_800, 10_000, true)]
    [InlineData(5000, 14_999, 10_000, false)]
    [InlineData(5000, 15_000, 10_000, true)]
    // Nothing appended since the last compaction, or an empty stream.
    [InlineData(0, 0, 0, false)]
    [InlineData(0, 5000, 5000, false)]
    public void IsDue_needs_min_bytes_the_ratio_over_the_last_snapshot_and_something_new(long start, long tail, long compactedEnd, bool due) =>
        Assert.Equal(due, CompactionRules.IsDue(Policy, start, tail, compactedEnd));

    [Fact]
    public void IsDue_with_a_ratio_at_or_below_one_needs_only_min_bytes_and_counts_retention_past_the_snapshot_as_no_snapshot()
    {
        var loose = Policy with { MinRatio = 0.1 };
        Assert.True(CompactionRules.IsDue(loose, 9500, 10_500, 10_000));
        Assert.False(CompactionRules.IsDue(loose, 9500, 10_499, 10_000));
        // Retention moved the start past the snapshot: only MinBytes counts.
        Assert.True(CompactionRules.IsDue(Policy, 12_000, 13_000, 10_000));
    }

    [Fact]
    public void ForkFloor_is_the_later_of_the_start_and_the_compacted_end()
    {
        Assert.Equal(10, CompactionRules.ForkFloor(10, 0));
        Assert.Equal(50, CompactionRules.ForkFloor(10, 50));
        Assert.Equal(60, CompactionRules.ForkFloor(60, 50));
    }

    private static CompactionCommit Commit(long start = 100, long generation = 1, long end = 400, int length = 100, int[]? lengths = null) =>
        new(start, generation, end, new byte[length], lengths ?? [length / 2, length - length / 2]);

    private static CompactionCommitStatus Check(CompactionCommit commit, bool isJson = true, bool isFork = false, long start = 100, long generation = 1, long tail = 500, bool isBoundary = true) =>
        CompactionRules.CheckCommit(commit, isJson, isFork, start, generation, tail, isBoundary);

    [Fact]
    public void CheckCommit_accepts_a_smaller_snapshot_of_the_current_start_and_generation()
    {
        Assert.Equal(CompactionCommitStatus.Committed, Check(Commit()));
        Assert.Equal(CompactionCommitStatus.Committed, Check(Commit(end: 500)));
        Assert.Equal(CompactionCommitStatus.Committed, Check(Commit(length: 299, lengths: [299])));
        Assert.Equal(300, Commit().SnapshotStart);
    }

    [Fact]
    public void CheckCommit_refuses_every_malformed_or_stale_commit()
    {
        Assert.Equal(CompactionCommitStatus.NotApplicable, Check(Commit(), isJson: false));
        Assert.Equal(CompactionCommitStatus.NotApplicable, Check(Commit(), isFork: true));
        Assert.Equal(CompactionCommitStatus.Conflict, Check(Commit(start: 0)));
        Assert.Equal(CompactionCommitStatus.Conflict, Check(Commit(generation: 0)));
        Assert.Equal(CompactionCommitStatus.Conflict, Check(Commit(), generation: 2));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(end: 501)));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(end: 100)));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(end: 90)));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(), isBoundary: false));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(length: 0, lengths: [])));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(lengths: [50, 49])));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(lengths: [50, 50, 0])));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(lengths: [150, -50])));
        // Not smaller than what it replaces (300 bytes).
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(length: 300, lengths: [300])));
        Assert.Equal(CompactionCommitStatus.Invalid, Check(Commit(length: 301, lengths: [301])));
    }

    private readonly struct EveryPosition : IStreamBoundaries
    {
        public bool IsBoundary(long position) => true;

        public long NextBoundary(long position) => position + 1;
    }

    private static readonly OffsetSpace Compacted = new(2, 1000);

    private static ReadStatus Resolve(OffsetQuery offset, out long start, OffsetSpace? space = null) =>
        ReadRules.ResolveStart(offset, space ?? Compacted, 800, 1500, isJson: true, default(EveryPosition), out start);

    private static OffsetQuery At(long generation, long position) => OffsetQuery.At(new StreamOffset(position) { Generation = generation });

    [Theory]
    // A generation not yet issued.
    [InlineData(3, 1200, ReadStatus.OffsetNotIssued)]
    [InlineData(3, 900, ReadStatus.OffsetNotIssued)]
    // An older generation below the compacted end: its data was replaced (410), even inside the snapshot.
    [InlineData(1, 900, ReadStatus.BeforeRetainedStart)]
    [InlineData(0, 999, ReadStatus.BeforeRetainedStart)]
    [InlineData(1, 100, ReadStatus.BeforeRetainedStart)]
    // An older generation at or after the compacted end: unchanged data.
    [InlineData(0, 1000, ReadStatus.Ok)]
    [InlineData(1, 1200, ReadStatus.Ok)]
    [InlineData(1, 1500, ReadStatus.Ok)]
    [InlineData(1, 1501, ReadStatus.OffsetBeyondTail)]
    // The current generation: the snapshot's own offsets, and below its start.
    [InlineData(2, 800, ReadStatus.Ok)]
    [InlineData(2, 900, ReadStatus.Ok)]
    [InlineData(2, 799, ReadStatus.BeforeRetainedStart)]
    public void ResolveStart_checks_the_generation_of_an_offset(long generation, long position, ReadStatus expected)
    {
        Assert.Equal(expected, Resolve(At(generation, position), out _));
        Assert.Equal(expected == ReadStatus.OffsetBeyondTail || expected == ReadStatus.BeforeRetainedStart && generation == 2 ? ReadStatus.Ok : expected,
            ReadRules.CheckGeneration(new StreamOffset(position) { Generation = generation }, Compacted));
    }

    [Fact]
    public void Minus_one_and_now_are_the_retained_start_and_the_tail_in_any_space()
    {
        Assert.Equal(ReadStatus.Ok, Resolve(OffsetQuery.Beginning, out var start));
        Assert.Equal(800, start);
        Assert.Equal(ReadStatus.Ok, Resolve(OffsetQuery.Now, out var now));
        Assert.Equal(1500, now);
        // A stream never compacted: every generation-0 offset is current, generation 1 is not issued.
        Assert.Equal(ReadStatus.Ok, Resolve(At(0, 900), out _, OffsetSpace.Initial));
        Assert.Equal(ReadStatus.OffsetNotIssued, Resolve(At(1, 900), out _, OffsetSpace.Initial));
    }
}
