using System.Collections.Concurrent;
using System.Text;
using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Testing;

/// <summary>
/// State-Protocol compaction (issue 18) through <see cref="IStreamCompaction"/> and <see cref="StateCompactor"/>: the
/// snapshot ends where the compacted prefix ended, the retained start moves to where it begins, the offset-space
/// generation goes up by one and every offset the store returns carries it; older offsets at or after the compacted end
/// stay valid, older ones below it answer 410; forks never read a source's snapshot.
/// </summary>
public abstract partial class StreamStoreContractTests
{
    private static readonly string SnapshotStart = """{"headers":{"control":"snapshot-start"}}""";
    private static readonly string SnapshotEnd = """{"headers":{"control":"snapshot-end"}}""";

    /// <summary>A State-Protocol change message (compact JSON, as stored).</summary>
    private static string Change(string key, object value, string operation = "upsert", string type = "t") =>
        $$$"""{"type":"{{{type}}}","key":"{{{key}}}","value":{{{value}}},"headers":{"operation":"{{{operation}}}"}}""";

    private static string Delete(string key, string type = "t") =>
        $$$"""{"type":"{{{type}}}","key":"{{{key}}}","headers":{"operation":"delete"}}""";

    /// <summary>Messages as the one JSON array a read returns.</summary>
    private static string Batch(params string[] messages) => "[" + string.Join(",", messages) + "]";

    /// <summary>Stored length of one JSON message (its comma included).</summary>
    private static long Stored(string message) => Encoding.UTF8.GetByteCount(message) + 1;

    /// <summary>
    /// Skips a compaction test for a store that does not implement <see cref="IStreamCompaction"/> yet (each store's
    /// branch adds it; a skipped test shows which).
    /// </summary>
    private void SkipUnlessCompaction()
    {
        if (Store is not IStreamCompaction)
        {
            Assert.Skip($"{Store.GetType().Name} does not implement IStreamCompaction.");
        }
    }

    private IStreamCompaction Compaction => Assert.IsAssignableFrom<IStreamCompaction>(Store);

    /// <summary>Compacts <paramref name="name"/> now (forced), as the on-demand route does.</summary>
    private async Task<CompactionOutcome> CompactNowAsync(string name) =>
        await StateCompactor.CompactAsync(Store, name, CompactionPolicy.State, force: true, Ct);

    /// <summary>Compacts and asserts the snapshot was committed.</summary>
    private async Task<CompactionOutcome> CompactedAsync(string name)
    {
        var outcome = await CompactNowAsync(name);
        Assert.Equal(CompactionStatus.Compacted, outcome.Status);
        Assert.NotNull(outcome.Info);
        return outcome;
    }

    private ValueTask<CompactionCommitResult> CommitAsync(string name, CompactionCommit commit) =>
        Compaction.CommitCompactionAsync(name, commit, Ct);

    /// <summary>A commit of <paramref name="messages"/> (stored form) as the snapshot of [start, end).</summary>
    private static CompactionCommit CommitOf(long start, long generation, long end, params string[] messages)
    {
        var bytes = Encoding.UTF8.GetBytes(string.Concat(messages.Select(m => m + ",")));
        return new CompactionCommit(start, generation, end, bytes, [.. messages.Select(m => (int)Stored(m))]);
    }

    private ValueTask<ReadResult> ReadInAsync(string name, long position, long generation, int maxBytes = Unlimited) =>
        ReadAsync(name, OffsetQuery.At(new StreamOffset(position) { Generation = generation }), maxBytes);

    /// <summary>
    /// A JSON stream "j" with five changes over three keys (a1 b1 a2 -b c1) in two appends: its snapshot is
    /// start, a2, c1, end. Returns the tail (the compacted end once compacted).
    /// </summary>
    private async Task<long> FiveChangesAsync(string name = "j")
    {
        await CreatedAsync(name, Json);
        await AppendedAsync(name, Batch(Change("a", 1), Change("b", 1), Change("a", 2)), Json);
        var last = await AppendedAsync(name, Batch(Delete("b"), Change("c", 1)), Json);
        return last.NextOffset.Position;
    }

    private static readonly string[] FiveChangesSnapshot = [SnapshotStart, Change("a", 2), Change("c", 1), SnapshotEnd];

    private static long LengthOf(string[] messages) => messages.Sum(Stored);

    /// <summary>Asserts a read at (<paramref name="generation"/>, <paramref name="position"/>) is refused as below the start <paramref name="start"/>.</summary>
    private async Task AssertCompactedAwayAsync(string name, long position, long generation, long start)
    {
        using var read = await ReadInAsync(name, position, generation);
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        Assert.NotNull(read.Info);
        Assert.Equal(At(start), read.Info.RetainedStart);
        Assert.Empty(read.Chunks);
    }

    private static void AssertGeneration(long generation, params StreamOffset[] offsets)
    {
        foreach (var offset in offsets)
        {
            Assert.Equal(generation, offset.Generation);
        }
    }

    [Fact]
    public async Task Compaction_from_minus_one_reads_the_snapshot_then_what_was_appended_after()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();

        var outcome = await CompactedAsync("j");
        await AppendedAsync("j", Batch(Change("d", 1)), Json);

        Assert.Equal(Batch([.. FiveChangesSnapshot, Change("d", 1)]), await ReadJsonAsync("j"));
        Assert.Equal(end, outcome.BytesBefore);
        Assert.Equal(LengthOf(FiveChangesSnapshot), outcome.BytesAfter);
        Assert.Equal(5, outcome.MessagesBefore);
        Assert.Equal(2, outcome.LiveKeys);
        Assert.False(outcome.Partial);
    }

    [Fact]
    public async Task Compaction_places_the_snapshot_so_it_ends_at_the_compacted_end()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        await AppendedAsync("j", Batch(Change("d", 1)), Json);
        var tail = (await InfoAsync("j")).Tail.Position;

        var info = (await CompactedAsync("j")).Info!;

        var start = tail - LengthOf(FiveChangesSnapshot) - Stored(Change("d", 1));
        Assert.Equal(At(start), info.RetainedStart);
        Assert.Equal(At(tail), info.CompactedEnd);
        Assert.Equal(At(tail), info.Tail);
        Assert.Equal(1, info.OffsetGeneration);
        Assert.Equal(info, await InfoAsync("j"));
        Assert.True(end < tail);
        using var read = await ReadFromStartAsync("j");
        Assert.Equal(At(start), read.Start);
        Assert.Equal(At(tail), read.Next);
        Assert.True(read.UpToDate);
        // The latest change of d is the last message before the end, so it is the snapshot's last kept message.
        Assert.Equal(Batch(SnapshotStart, Change("a", 2), Change("c", 1), Change("d", 1), SnapshotEnd), JsonOf(read));
    }

    [Fact]
    public async Task Offsets_at_or_after_the_compacted_end_stay_valid_in_every_generation()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        await CompactedAsync("j");
        await AppendedAsync("j", Batch(Change("d", 1)), Json);
        await AppendedAsync("j", Batch(Change("e", 1)), Json);
        var second = end + Stored(Change("d", 1));

        foreach (var generation in new long[] { 0, 1 })
        {
            Assert.Equal(Batch(Change("d", 1), Change("e", 1)), JsonOf(await ReadInAsync("j", end, generation)));
            using var read = await ReadInAsync("j", second, generation);
            Assert.Equal(Batch(Change("e", 1)), JsonOf(read));
            Assert.Equal(At(second), read.Start);
            AssertGeneration(1, read.Start, read.Next);
        }
    }

    [Fact]
    public async Task An_older_generation_offset_below_the_compacted_end_is_refused_with_the_new_start()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        var snapshotStart = end - LengthOf(FiveChangesSnapshot);
        await CompactedAsync("j");

        await AssertCompactedAwayAsync("j", 0, 0, snapshotStart);
        // Inside the snapshot's range, even on one of its boundaries: the old offset named other data.
        await AssertCompactedAwayAsync("j", snapshotStart, 0, snapshotStart);
        await AssertCompactedAwayAsync("j", snapshotStart + Stored(SnapshotStart), 0, snapshotStart);
        await AssertCompactedAwayAsync("j", end - 1, 0, snapshotStart);
        // In the new generation the snapshot's boundaries are readable; below its start is before the retained start.
        Assert.Equal(Batch(FiveChangesSnapshot[1..]), JsonOf(await ReadInAsync("j", snapshotStart + Stored(SnapshotStart), 1)));
        await AssertCompactedAwayAsync("j", 0, 1, snapshotStart);
    }

    [Fact]
    public async Task An_offset_of_a_generation_not_yet_issued_is_refused()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        Assert.Equal(ReadStatus.OffsetNotIssued, (await ReadInAsync("j", 0, 1)).Status);
        await CompactedAsync("j");

        Assert.Equal(ReadStatus.OffsetNotIssued, (await ReadInAsync("j", end, 2)).Status);
        Assert.Equal(ReadStatus.OffsetNotIssued, (await ReadInAsync("j", end - LengthOf(FiveChangesSnapshot), 2)).Status);
        Assert.Equal(ReadStatus.Ok, (await ReadInAsync("j", end, 1)).Status);
    }

    [Fact]
    public async Task The_snapshot_can_be_read_in_pieces_in_the_new_generation()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        await CompactedAsync("j");
        await AppendedAsync("j", Batch(Change("d", 1)), Json);

        var messages = new List<string>();
        var read = await ReadAsync("j", OffsetQuery.Beginning, maxBytes: 1);
        while (true)
        {
            Assert.Equal(ReadStatus.Ok, read.Status);
            AssertGeneration(1, read.Start, read.Next);
            var piece = JsonOf(read);
            Assert.NotEqual("[]", piece);
            messages.Add(piece[1..^1]);
            if (read.UpToDate)
            {
                break;
            }
            var next = read.Next;
            read.Dispose();
            read = await ReadAsync("j", OffsetQuery.At(next), maxBytes: 1);
        }
        read.Dispose();

        Assert.Equal([.. FiveChangesSnapshot, Change("d", 1)], messages);
        Assert.Equal(end + Stored(Change("d", 1)), read.Next.Position);
    }

    [Fact]
    public async Task Every_offset_the_store_returns_carries_the_new_generation()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        var heard = new ConcurrentQueue<StreamChanged>();
        await using var subscription = Store.Changes.Subscribe((change, _) =>
        {
            heard.Enqueue(change);
            return ValueTask.CompletedTask;
        }, c => c.IsLocal && c.Name == "j");

        var compacted = (await CompactedAsync("j")).Info!;
        var appended = await AppendedAsync("j", Batch(Change("d", 1)), Json);
        var produced = await AppendAsync("j", Batch(Change("d", 1)), Json, producer: Producer(0, 0));
        var again = await AppendAsync("j", Batch(Change("d", 1)), Json, producer: Producer(0, 0));
        var info = await InfoAsync("j");
        using var fromStart = await ReadFromStartAsync("j");
        using var atEnd = await ReadInAsync("j", end, 0);
        using var now = await ReadAsync("j", OffsetQuery.Now);
        await Store.Changes.WhenDeliveredAsync(Ct).WaitAsync(HangGuard, Ct);

        Assert.Equal(AppendStatus.Appended, produced.Status);
        Assert.Equal(AppendStatus.Duplicate, again.Status);
        AssertGeneration(1, compacted.Tail, compacted.RetainedStart, compacted.CompactedEnd);
        AssertGeneration(1, info.Tail, info.RetainedStart, info.CompactedEnd);
        AssertGeneration(1, appended.NextOffset, produced.NextOffset, again.NextOffset);
        AssertGeneration(1, fromStart.Start, fromStart.Next, atEnd.Start, atEnd.Next, now.Start, now.Next);
        Assert.Equal(1, fromStart.Info!.OffsetGeneration);
        var tails = heard.Where(c => c.Kind is StreamChangeKind.Appended or StreamChangeKind.Closed).ToArray();
        Assert.Equal(2, tails.Length);
        AssertGeneration(1, [.. tails.Select(c => c.Tail)]);
    }

    [Fact]
    public async Task A_second_compaction_moves_to_the_next_generation()
    {
        SkipUnlessCompaction();
        var first = await FiveChangesAsync();
        await CompactedAsync("j");
        await AppendedAsync("j", Batch(Change("a", 3), Delete("c"), Change("d", 1)), Json);
        await AppendedAsync("j", Batch(Change("d", 2)), Json);
        var end = (await InfoAsync("j")).Tail.Position;

        var info = (await CompactedAsync("j")).Info!;

        string[] snapshot = [SnapshotStart, Change("a", 3), Change("d", 2), SnapshotEnd];
        Assert.Equal(2, info.OffsetGeneration);
        Assert.Equal(At(end), info.CompactedEnd);
        Assert.Equal(At(end - LengthOf(snapshot)), info.RetainedStart);
        Assert.Equal(Batch(snapshot), await ReadJsonAsync("j"));
        // Generation 1 offsets below the new end are gone, and so are generation 0 ones; at the end all are fine.
        await AssertCompactedAwayAsync("j", first, 1, end - LengthOf(snapshot));
        await AssertCompactedAwayAsync("j", first, 0, end - LengthOf(snapshot));
        foreach (var generation in new long[] { 0, 1, 2 })
        {
            using var read = await ReadInAsync("j", end, generation);
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.True(read.UpToDate);
        }
        Assert.Equal(ReadStatus.OffsetNotIssued, (await ReadInAsync("j", end, 3)).Status);
    }

    [Fact]
    public async Task A_snapshot_that_is_not_smaller_changes_nothing()
    {
        SkipUnlessCompaction();
        await CreatedAsync("j", Json);
        await AppendedAsync("j", Batch(Change("a", 1), Change("b", 1)), Json);
        var before = await InfoAsync("j");

        var outcome = await CompactNowAsync("j");

        Assert.Equal(CompactionStatus.NotSmaller, outcome.Status);
        Assert.Equal(before, await InfoAsync("j"));
        Assert.Equal(0, (await InfoAsync("j")).OffsetGeneration);
        Assert.Equal(Batch(Change("a", 1), Change("b", 1)), await ReadJsonAsync("j"));
        Assert.Equal(ReadStatus.Ok, (await ReadInAsync("j", Stored(Change("a", 1)), 0)).Status);
    }

    [Fact]
    public async Task Nothing_appended_since_the_last_compaction_is_not_due()
    {
        SkipUnlessCompaction();
        await FiveChangesAsync();
        await CompactedAsync("j");
        Assert.Equal(CompactionStatus.NotDue, (await CompactNowAsync("j")).Status);
        Assert.Equal(1, (await InfoAsync("j")).OffsetGeneration);
    }

    [Fact]
    public async Task A_commit_is_refused_when_the_start_or_generation_moved()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        await AppendedAsync("j", Batch(Change("a", 3), Change("a", 4), Change("a", 5)), Json);
        var tail = (await InfoAsync("j")).Tail.Position;

        Assert.Equal(CompactionCommitStatus.Conflict, (await CommitAsync("j", CommitOf(0, 1, end, FiveChangesSnapshot))).Status);
        Assert.Equal(CompactionCommitStatus.Conflict, (await CommitAsync("j", CommitOf(Stored(Change("a", 1)), 0, end, FiveChangesSnapshot))).Status);

        // Retention moved the start after the snapshot was planned (a store reopened with new limits keeps its data:
        // the stream starts afresh).
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("j"));
        await UseLimitsAsync(Limits with { Retention = new RetentionPolicies([], new RetentionPolicy(null, tail - Stored(Change("a", 1)))) });
        end = await FiveChangesAsync();
        await AppendedAsync("j", Batch(Change("a", 3), Change("a", 4), Change("a", 5)), Json);
        var trimmed = await Assert.IsAssignableFrom<IStreamRetention>(Store).ApplyRetentionAsync("j", new RetentionPolicy(null, tail - Stored(Change("a", 1))), Ct);
        Assert.Equal(RetentionStatus.Trimmed, trimmed.Status);
        Assert.Equal(CompactionCommitStatus.Conflict, (await CommitAsync("j", CommitOf(0, 0, end, FiveChangesSnapshot))).Status);

        // A compaction in between moved both.
        var info = (await CompactedAsync("j")).Info!;
        Assert.Equal(CompactionCommitStatus.Conflict, (await CommitAsync("j", CommitOf(trimmed.RetainedStart.Position, 0, tail, FiveChangesSnapshot))).Status);
        Assert.Equal(info, await InfoAsync("j"));
    }

    [Fact]
    public async Task Malformed_commits_are_refused_and_change_nothing()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        var before = await InfoAsync("j");
        var snapshot = Encoding.UTF8.GetBytes(string.Concat(FiveChangesSnapshot.Select(m => m + ",")));
        int[] lengths = [.. FiveChangesSnapshot.Select(m => (int)Stored(m))];

        CompactionCommit[] invalid =
        [
            // The end past the tail, or not a message boundary.
            new(0, 0, end + 1, snapshot, lengths),
            new(0, 0, end - 1, snapshot, lengths),
            // Lengths that do not add up, or a zero length.
            new(0, 0, end, snapshot, [.. lengths[..^1]]),
            new(0, 0, end, snapshot, [.. lengths, 0]),
            // Not smaller than what it replaces, or empty.
            new(0, 0, Stored(Change("a", 1)), Encoding.UTF8.GetBytes(Change("a", 1) + ","), [(int)Stored(Change("a", 1))]),
            new(0, 0, end, ReadOnlyMemory<byte>.Empty, []),
        ];
        foreach (var commit in invalid)
        {
            Assert.Equal(CompactionCommitStatus.Invalid, (await CommitAsync("j", commit)).Status);
        }

        Assert.Equal(before, await InfoAsync("j"));
        Assert.Equal(0, (await InfoAsync("j")).OffsetGeneration);
        Assert.Equal(Batch(Change("a", 1), Change("b", 1), Change("a", 2), Delete("b"), Change("c", 1)), await ReadJsonAsync("j"));
        Assert.Equal(CompactionCommitStatus.NotFound, (await CommitAsync("none", CommitOf(0, 0, end, FiveChangesSnapshot))).Status);
    }

    [Fact]
    public async Task Streams_that_are_not_json_and_forks_are_not_compacted()
    {
        SkipUnlessCompaction();
        await CreatedAsync("s", TextPlain, body: new string('x', 400));
        var end = await FiveChangesAsync();
        await CreatedAsync("f", Json, fork: ForkOf("j"));
        await AppendedAsync("f", Batch(Change("a", 3), Change("a", 4)), Json);
        var forkTail = (await InfoAsync("f")).Tail.Position;

        Assert.Equal(CompactionStatus.NotApplicable, (await CompactNowAsync("s")).Status);
        Assert.Equal(CompactionStatus.NotApplicable, (await CompactNowAsync("f")).Status);
        Assert.Equal(CompactionCommitStatus.NotApplicable, (await CommitAsync("s", CommitOf(0, 0, 400, FiveChangesSnapshot))).Status);
        Assert.Equal(CompactionCommitStatus.NotApplicable, (await CommitAsync("f", CommitOf(0, 0, forkTail, FiveChangesSnapshot))).Status);
        Assert.Equal(CompactionStatus.NotFound, (await CompactNowAsync("none")).Status);
        Assert.Equal(0, (await InfoAsync("f")).OffsetGeneration);
        Assert.Equal(end + Stored(Change("a", 3)) + Stored(Change("a", 4)), forkTail);
    }

    [Fact]
    public async Task A_fork_of_a_compacted_source_never_reads_the_snapshot()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        // A fork made before the compaction inherits the whole prefix.
        await CreatedAsync("early", Json, fork: ForkOf("j"));
        await AppendedAsync("j", Batch(Change("d", 1)), Json);
        var tail = end + Stored(Change("d", 1));
        await CompactedAsync("j");
        await AppendedAsync("j", Batch(Change("e", 1)), Json);
        await CreatedAsync("late", Json, fork: ForkOf("j", tail));
        await AppendedAsync("late", Batch(Change("f", 1)), Json);

        // The inherited range below the source's compacted end answers 410; from -1 a fork starts at that end.
        await AssertCompactedAwayAsync("early", 0, 0, end);
        await AssertCompactedAwayAsync("late", 0, 0, tail);
        await AssertCompactedAwayAsync("late", end, 0, tail);
        Assert.Equal("[]", await ReadJsonAsync("early"));
        Assert.Equal(At(end), (await InfoAsync("early")).RetainedStart);
        Assert.Equal(Batch(Change("f", 1)), await ReadJsonAsync("late"));
        Assert.Equal(At(tail), (await InfoAsync("late")).RetainedStart);
        Assert.Equal(Batch(Change("f", 1)), JsonOf(await ReadInAsync("late", tail, 0)));
        Assert.Equal(0, (await InfoAsync("late")).OffsetGeneration);
        // A fork's inherited range at or after the compacted end reads as before.
        await CreatedAsync("later", Json, fork: ForkOf("j"));
        Assert.Equal(Batch(Change("e", 1)), await ReadJsonAsync("later"));
        Assert.Equal(Batch(Change("e", 1)), JsonOf(await ReadInAsync("later", tail, 0)));
    }

    [Fact]
    public async Task A_fork_at_an_offset_below_the_compacted_end_inherits_nothing_there()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        await CompactedAsync("j");
        await AppendedAsync("j", Batch(Change("d", 1)), Json);

        var below = await CreateAsync("old", Json, fork: new ForkRequest("j", new StreamOffset(Stored(Change("a", 1))), 0));
        var notIssued = await CreateAsync("future", Json, fork: new ForkRequest("j", new StreamOffset(end) { Generation = 2 }, 0));
        // A fork at the tail, in the new generation, inherits what follows the compacted end.
        var atTail = await CreateAsync("at-tail", Json, fork: new ForkRequest("j", new StreamOffset(end + Stored(Change("d", 1))) { Generation = 1 }, 0));

        Assert.Equal(CreateStatus.Created, below.Status);
        Assert.Equal("[]", await ReadJsonAsync("old"));
        Assert.Equal(CreateStatus.ForkOffsetNotIssued, notIssued.Status);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("future"));
        Assert.Equal(CreateStatus.Created, atTail.Status);
        Assert.Equal(Batch(Change("d", 1)), await ReadJsonAsync("at-tail"));
    }

    [Fact]
    public async Task Appends_between_reading_the_prefix_and_the_commit_survive_it()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        // The snapshot of [0, end) is planned, then appends land, then it is committed.
        await AppendedAsync("j", Batch(Change("a", 9), Change("x", 1)), Json);
        var tail = (await InfoAsync("j")).Tail.Position;

        var committed = await CommitAsync("j", CommitOf(0, 0, end, FiveChangesSnapshot));

        Assert.Equal(CompactionCommitStatus.Committed, committed.Status);
        Assert.Equal(At(end), committed.Info!.CompactedEnd);
        Assert.Equal(At(tail), committed.Info.Tail);
        Assert.Equal(At(end - LengthOf(FiveChangesSnapshot)), committed.Info.RetainedStart);
        Assert.Equal(Batch([.. FiveChangesSnapshot, Change("a", 9), Change("x", 1)]), await ReadJsonAsync("j"));
        Assert.Equal(Batch(Change("a", 9), Change("x", 1)), JsonOf(await ReadInAsync("j", end, 0)));
        Assert.Equal(At(tail + Stored(Change("y", 1))), (await AppendedAsync("j", Batch(Change("y", 1)), Json)).NextOffset);
    }

    [Fact]
    public async Task Appends_running_during_a_compaction_are_all_kept()
    {
        SkipUnlessCompaction();
        await CreatedAsync("j", Json);
        for (var i = 0; i < 200; i++)
        {
            await AppendedAsync("j", Batch(Change("k" + (i % 10), i)), Json);
        }
        var appends = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await AppendedAsync("j", Batch(Change("n" + i, i)), Json);
            }
        }, Ct);

        var outcome = await CompactNowAsync("j");
        await appends;

        Assert.Equal(CompactionStatus.Compacted, outcome.Status);
        var info = await InfoAsync("j");
        Assert.Equal(outcome.Info!.CompactedEnd, info.CompactedEnd);
        using var read = await ReadFromStartAsync("j");
        using var all = System.Text.Json.JsonDocument.Parse(JsonOf(read));
        var messages = all.RootElement.EnumerateArray().Select(m => m.GetRawText()).ToList();
        // Every key's latest value, each exactly once: the ten compacted keys (190..199) and all 200 appended meanwhile,
        // whether an append landed before the compaction read its prefix (then it is in the snapshot) or after.
        for (var i = 190; i < 200; i++)
        {
            Assert.Single(messages, m => m == Change("k" + (i % 10), i));
        }
        for (var i = 0; i < 200; i++)
        {
            Assert.Single(messages, m => m == Change("n" + i, i));
        }
        Assert.Equal(info.Tail, read.Next);
    }

    [Fact]
    public async Task A_compaction_survives_a_restart()
    {
        SkipUnlessCompaction();
        var end = await FiveChangesAsync();
        await CompactedAsync("j");
        await AppendedAsync("j", Batch(Change("d", 1)), Json);
        var before = await InfoAsync("j");

        await RestartAsync();

        var after = await InfoAsync("j");
        Assert.Equal(before, after);
        Assert.Equal((1L, end, end - LengthOf(FiveChangesSnapshot)), (after.OffsetGeneration, after.CompactedEnd.Position, after.RetainedStart.Position));
        AssertGeneration(1, after.Tail, after.RetainedStart, after.CompactedEnd);
        Assert.Equal(Batch([.. FiveChangesSnapshot, Change("d", 1)]), await ReadJsonAsync("j"));
        await AssertCompactedAwayAsync("j", 0, 0, end - LengthOf(FiveChangesSnapshot));
        Assert.Equal(Batch(Change("d", 1)), JsonOf(await ReadInAsync("j", end, 0)));
        AssertGeneration(1, (await AppendedAsync("j", Batch(Change("e", 1)), Json)).NextOffset);
    }

    [Fact]
    public async Task Compaction_leaves_closure_and_producers_as_they_were()
    {
        SkipUnlessCompaction();
        await CreatedAsync("j", Json);
        await AppendedAsync("j", Batch(Change("a", 1), Change("a", 2)), Json, producer: Producer(0, 0));
        await AppendedAsync("j", Batch(Change("a", 3), Change("a", 4)), Json, producer: Producer(0, 1));
        await CreatedAsync("c", Json);
        await AppendedAsync("c", Batch(Change("a", 1), Change("a", 2), Change("a", 3)), Json, close: true);

        await CompactedAsync("j");
        var closed = (await CompactedAsync("c")).Info!;

        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("j", Batch(Change("a", 4)), Json, producer: Producer(0, 1))).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("j", Batch(Change("a", 5)), Json, producer: Producer(0, 2))).Status);
        Assert.True(closed.Closed);
        Assert.True((await InfoAsync("c")).Closed);
        Assert.Equal(AppendStatus.StreamClosed, (await AppendAsync("c", Batch(Change("a", 4)), Json)).Status);
        using var read = await ReadFromStartAsync("c");
        Assert.True(read.Closed);
        Assert.Equal(Batch(SnapshotStart, Change("a", 3), SnapshotEnd), JsonOf(read));
    }
}
