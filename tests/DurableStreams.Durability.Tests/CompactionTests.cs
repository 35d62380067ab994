using System.Globalization;
using System.Text.Json.Nodes;
using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Core.Retention;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// State-Protocol compaction in the file store beyond the shared contract: the snapshot file's life (written, named by
/// the state record, replaced, deleted with its stream), recovery (orphan snapshot files deleted, the start, generation
/// and compacted end kept across a crash before the checkpoint and a restart after it), the replaced prefix's disk
/// space coming back, and reads that chose the old prefix before a compaction was published.
/// </summary>
public sealed class CompactionTests : FileStoreTestBase
{
    private const string Name = "state/rows";

    private string SnapshotsDirectory => Path.Combine(DataDirectory, "snapshots");

    private string[] SnapshotFiles() =>
        Directory.Exists(SnapshotsDirectory) ? [.. Directory.EnumerateFiles(SnapshotsDirectory).Select(Path.GetFileName).Order(StringComparer.Ordinal)!] : [];

    private static string SnapshotFileName(long id, long generation) =>
        id.ToString("x16", CultureInfo.InvariantCulture) + ".s" + generation.ToString(CultureInfo.InvariantCulture);

    /// <summary>One State-Protocol change message.</summary>
    private static string Change(string key, int version, string operation = "upsert", int padding = 0) =>
        operation == "delete"
            ? $$$"""{"type":"row","key":"{{{key}}}","headers":{"operation":"delete"}}"""
            : $$$"""{"type":"row","key":"{{{key}}}","value":{"v":{{{version}}},"pad":"{{{new string('x', padding)}}}"},"headers":{"operation":"{{{operation}}}"}}""";

    /// <summary>Appends <paramref name="rounds"/> upserts of each of <paramref name="keys"/> keys, <paramref name="keys"/> messages an append.</summary>
    private async Task ChurnAsync(string name, int rounds, int keys, int padding = 0, int firstVersion = 0)
    {
        for (var r = 0; r < rounds; r++)
        {
            var batch = string.Join(",", Enumerable.Range(0, keys).Select(k => Change("k" + k, firstVersion + r, padding: padding)));
            await AppendedAsync(name, "[" + batch + "]", Json);
        }
    }

    private async Task<CompactionOutcome> CompactAsync(string name = Name)
    {
        var outcome = await StateCompactor.CompactAsync(Store, name, CompactionPolicy.State, force: true, Ct);
        Assert.Equal(CompactionStatus.Compacted, outcome.Status);
        return outcome;
    }

    /// <summary>The state a reader from -1 materialises: (key → value) after applying every message in order.</summary>
    private async Task<Dictionary<string, string>> MaterializeAsync(string name = Name)
    {
        var read = await ReadFromStartAsync(name);
        Assert.Equal(ReadStatus.Ok, read.Status);
        var state = new Dictionary<string, string>();
        foreach (var message in JsonNode.Parse(JsonOf(read))!.AsArray())
        {
            var headers = message!["headers"]!;
            if (headers["control"] is { } control)
            {
                if ((string?)control == "reset")
                {
                    state.Clear();
                }
                continue;
            }
            var key = (string)message["key"]!;
            if ((string?)headers["operation"] == "delete")
            {
                state.Remove(key);
            }
            else
            {
                state[key] = message["value"]!.ToJsonString();
            }
        }
        return state;
    }

    [Fact]
    public async Task A_compaction_writes_its_snapshot_file_and_the_next_one_replaces_it()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 50, keys: 10);
        var id = await IdOfAsync(Name);
        var tail = (await InfoAsync(Name)).Tail.Position;
        var expected = await MaterializeAsync();

        var first = await CompactAsync();

        var info = await InfoAsync(Name);
        Assert.Equal(1, info.OffsetGeneration);
        Assert.Equal(tail, info.CompactedEnd.Position);
        Assert.Equal(tail - first.BytesAfter, info.RetainedStart.Position);
        Assert.Equal([SnapshotFileName(id, 1)], SnapshotFiles());
        Assert.Equal(first.BytesAfter, new FileInfo(Path.Combine(SnapshotsDirectory, SnapshotFileName(id, 1))).Length);
        Assert.Equal(expected, await MaterializeAsync());
        var fromStart = await ReadFromStartAsync(Name);
        Assert.Equal(1, fromStart.Start.Generation);
        Assert.Equal(info.RetainedStart.Position, fromStart.Start.Position);
        // An old offset inside the replaced prefix is gone; the old tail (the compacted end) still reads.
        Assert.Equal(ReadStatus.BeforeRetainedStart, (await ReadAsync(Name, info.RetainedStart.Position)).Status);
        Assert.Equal(ReadStatus.Ok, (await ReadAsync(Name, tail)).Status);

        await ChurnAsync(Name, rounds: 50, keys: 10, firstVersion: 100);
        expected = await MaterializeAsync();
        await CompactAsync();

        Assert.Equal(2, (await InfoAsync(Name)).OffsetGeneration);
        Assert.Equal([SnapshotFileName(id, 2)], SnapshotFiles());
        Assert.Equal(expected, await MaterializeAsync());

        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync(Name));
        Assert.Empty(SnapshotFiles());
    }

    [Fact]
    public async Task The_start_generation_and_compacted_end_survive_a_crash_before_the_checkpoint_and_a_restart_after_it()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 40, keys: 8);
        await Store.CheckpointAsync();
        Store.Faults.SuppressCheckpoints = true;
        await CompactAsync();
        await ChurnAsync(Name, rounds: 2, keys: 8, firstVersion: 500);
        var before = await InfoAsync(Name);
        var expected = await MaterializeAsync();

        // Stopped like a crash: the compaction is only in the commit log, which the next open replays.
        await RestartAsync();
        AssertSameSpace(before, await InfoAsync(Name));
        Assert.Equal(expected, await MaterializeAsync());

        await Store.CheckpointAsync();
        await RestartAsync();
        AssertSameSpace(before, await InfoAsync(Name));
        Assert.Equal(expected, await MaterializeAsync());
        Assert.Equal(1, (await AppendedAsync(Name, Change("k1", 999), Json)).NextOffset.Generation);
    }

    private static void AssertSameSpace(StoredStreamInfo expected, StoredStreamInfo actual)
    {
        Assert.Equal(expected.OffsetGeneration, actual.OffsetGeneration);
        Assert.Equal(expected.RetainedStart.Position, actual.RetainedStart.Position);
        Assert.Equal(expected.CompactedEnd.Position, actual.CompactedEnd.Position);
        Assert.Equal(expected.Tail.Position, actual.Tail.Position);
        Assert.Equal(expected.OffsetGeneration, actual.Tail.Generation);
    }

    [Fact]
    public async Task Snapshot_files_no_committed_compaction_names_are_deleted_at_open()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 30, keys: 5);
        await CompactAsync();
        var id = await IdOfAsync(Name);
        var expected = await MaterializeAsync();
        await StopAsync();
        // A crash before a compaction's commit leaves its file; so does one before the previous file was freed.
        await File.WriteAllTextAsync(Path.Combine(SnapshotsDirectory, SnapshotFileName(id, 2)), "[torn", Ct);
        await File.WriteAllTextAsync(Path.Combine(SnapshotsDirectory, SnapshotFileName(id, 0)), "old", Ct);
        await File.WriteAllTextAsync(Path.Combine(SnapshotsDirectory, SnapshotFileName(id + 100, 1)), "gone", Ct);

        Start();

        Assert.Equal([SnapshotFileName(id, 1)], SnapshotFiles());
        Assert.Equal(1, (await InfoAsync(Name)).OffsetGeneration);
        Assert.Equal(expected, await MaterializeAsync());
        // The next compaction takes generation 2 afresh.
        await ChurnAsync(Name, rounds: 30, keys: 5, firstVersion: 100);
        await CompactAsync();
        Assert.Equal([SnapshotFileName(id, 2)], SnapshotFiles());
    }

    [Fact]
    public async Task A_compaction_whose_commit_fails_leaves_the_old_prefix_and_no_snapshot_file()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 30, keys: 5);
        var before = await InfoAsync(Name);
        var expected = await ReadJsonAsync(Name);
        Store.Faults.BeforeSync = () => new IOException("injected sync failure");

        await Assert.ThrowsAnyAsync<Exception>(async () => await StateCompactor.CompactAsync(Store, Name, CompactionPolicy.State, force: true, Ct));

        Store.Faults.BeforeSync = null;
        Assert.Empty(SnapshotFiles());
        AssertSameSpace(before, await InfoAsync(Name));
        Assert.Equal(expected, await ReadJsonAsync(Name));
        await RestartAsync();
        AssertSameSpace(before, await InfoAsync(Name));
        Assert.Equal(expected, await ReadJsonAsync(Name));
        await CompactAsync();
        Assert.Equal(1, (await InfoAsync(Name)).OffsetGeneration);
    }

    [Fact]
    public async Task Compacting_a_10_MiB_history_returns_the_disk_space_of_the_replaced_prefix()
    {
        await CreatedAsync(Name, Json);
        // 100 keys, each rewritten 100 times with ~1 KiB values: about 10.6 MiB of history, 100 live rows.
        await ChurnAsync(Name, rounds: 100, keys: 100, padding: 1024);
        await Store.CheckpointAsync();
        var tail = (await InfoAsync(Name)).Tail.Position;
        var before = Store.AllocatedBytesOf(Name);
        Assert.True(tail >= 10 << 20, $"history of {tail} bytes");
        Assert.True(before >= tail - 4096, $"{before} bytes allocated before");

        var outcome = await CompactAsync();

        var after = Store.AllocatedBytesOf(Name);
        var snapshot = new FileInfo(Path.Combine(SnapshotsDirectory, SnapshotFileName(await IdOfAsync(Name), 1))).Length;
        TestContext.Current.TestOutputHelper?.WriteLine($"history {tail} B; data file allocated {before} B before, {after} B after; snapshot file {snapshot} B; freed {outcome.BytesFreed} B");
        Assert.True(after <= 4096, $"{after} bytes of the data file still allocated below its compacted end");
        Assert.True(snapshot < 120 * 1024, $"snapshot of {snapshot} bytes");
        Assert.True(outcome.BytesFreed >= tail - 4096, $"freed {outcome.BytesFreed}");
        // The data file keeps its length: offsets at and after the compacted end are file offsets as before.
        Assert.Equal(tail, new FileInfo(DataFileOf(await IdOfAsync(Name))).Length);
        Assert.Equal(100, (await MaterializeAsync()).Count);
    }

    [Fact]
    public async Task A_read_that_chose_the_old_prefix_before_a_compaction_answers_410_and_the_stream_stays_healthy()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 29, keys: 5, padding: 2000);
        // The last append: inside what the snapshot will occupy, and on pages the compaction releases.
        var inside = (await InfoAsync(Name)).Tail.Position;
        await ChurnAsync(Name, rounds: 1, keys: 5, padding: 2000, firstVersion: 100);
        var expected = await MaterializeAsync();
        var raced = 0;
        Store.Faults.BeforeCopy = () =>
        {
            // The read has chosen its frames; a compaction is published and frees them before it reads them.
            if (Interlocked.Exchange(ref raced, 1) == 0)
            {
                Assert.Equal(CompactionStatus.Compacted, StateCompactor.CompactAsync(Store, Name, CompactionPolicy.State, force: true, Ct).AsTask().GetAwaiter().GetResult().Status);
            }
        };

        var read = await ReadAsync(Name, inside);

        Assert.Equal(1, raced);
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        Assert.Equal(1, read.Info!.OffsetGeneration);
        Assert.True(read.Info.RetainedStart.Position < inside, "the read's offset lies inside the snapshot's range");
        Store.Faults.BeforeCopy = null;
        Assert.Equal(expected, await MaterializeAsync());
        Assert.Equal(ReadStatus.Ok, (await ReadAsync(Name, (await InfoAsync(Name)).CompactedEnd.Position)).Status);
    }

    [Fact]
    public async Task A_read_from_the_beginning_that_raced_a_compaction_starts_again_in_the_new_offset_space()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 30, keys: 5);
        var expected = await MaterializeAsync();
        var raced = 0;
        Store.Faults.BeforeCopy = () =>
        {
            if (Interlocked.Exchange(ref raced, 1) == 0)
            {
                Assert.Equal(CompactionStatus.Compacted, StateCompactor.CompactAsync(Store, Name, CompactionPolicy.State, force: true, Ct).AsTask().GetAwaiter().GetResult().Status);
            }
        };

        var read = await ReadFromStartAsync(Name);

        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Equal(1, read.Start.Generation);
        Assert.Equal((await InfoAsync(Name)).RetainedStart.Position, read.Start.Position);
        Assert.StartsWith("""[{"headers":{"control":"snapshot-start"}}""", JsonOf(read), StringComparison.Ordinal);
        Store.Faults.BeforeCopy = null;
        Assert.Equal(expected, await MaterializeAsync());
    }

    [Fact]
    public async Task Appends_and_the_change_feed_carry_the_new_generation()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 20, keys: 5);
        await CompactAsync();
        var seen = new TaskCompletionSource<StreamChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using (Store.Changes.Subscribe((change, _) =>
        {
            seen.TrySetResult(change);
            return ValueTask.CompletedTask;
        }))
        {
            var appended = await AppendedAsync(Name, Change("k1", 7), Json);

            Assert.Equal(1, appended.NextOffset.Generation);
            var change = await Promptly(seen.Task);
            Assert.Equal(1, change.Tail.Generation);
            Assert.Equal(appended.NextOffset.Position, change.Tail.Position);
        }
    }

    [Fact]
    public async Task Retention_after_a_compaction_keeps_the_generation_in_the_state_it_writes()
    {
        await CreatedAsync(Name, Json);
        await ChurnAsync(Name, rounds: 30, keys: 5);
        await CompactAsync();
        var compacted = await InfoAsync(Name);
        // A size limit that moves the start into the snapshot (the retention pass writes the state record).
        var limit = compacted.Tail.Position - compacted.RetainedStart.Position - 100;
        var trimmed = await Store.ApplyRetentionAsync(Name, new RetentionPolicy(null, limit), Ct);
        Assert.Equal(RetentionStatus.Trimmed, trimmed.Status);
        await Store.CheckpointAsync();

        await RestartAsync();

        var info = await InfoAsync(Name);
        Assert.Equal(1, info.OffsetGeneration);
        Assert.Equal(compacted.CompactedEnd.Position, info.CompactedEnd.Position);
        Assert.Equal(trimmed.RetainedStart.Position, info.RetainedStart.Position);
        var read = await ReadFromStartAsync(Name);
        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Equal(info.Tail.Position, read.Next.Position);
    }

    [Fact]
    public async Task A_state_record_of_a_compacted_stream_is_version_4_and_round_trips()
    {
        var requested = new StreamConfiguration(Json, null, null, null, null, 0);
        var state = new StreamState { ContentType = Json, Requested = requested, Tail = 500, LastStreamSeq = "s" };
        var encoded = Records.EncodeState(state, 300, new SnapshotSpan(3, 300, 450));
        Assert.Equal(4, encoded[0]);
        var decoded = new StreamState { ContentType = Json, Requested = requested };
        Records.DecodeStateInto(encoded, decoded, out var start, out var compacted);
        Assert.Equal((500L, "s", 300L), (decoded.Tail, decoded.LastStreamSeq, start));
        Assert.Equal(new SnapshotSpan(3, 300, 450), compacted);
        Assert.Equal(3, Records.EncodeState(state, 300)[0]);
    }
}
