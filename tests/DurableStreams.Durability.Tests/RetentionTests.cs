using DurableStreams.Core;
using DurableStreams.Core.Retention;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Retention in the file store beyond the shared contract: the retained start's durability (state record version 3,
/// through the commit log), disk space coming back (hole punching), frame and sample records dropped, reads racing a
/// free, append-time samples surviving a restart, and a restart between persisting a start and freeing below it.
/// </summary>
public sealed class RetentionTests : FileStoreTestBase
{
    private const int Chunk = 64 * 1024;
    private static readonly RetentionPolicy OneMiB = new(null, 1 << 20);
    private static readonly RetentionPolicy HundredSeconds = new(TimeSpan.FromSeconds(100), null);

    protected override FileStreamStoreOptions StoreOptions => new()
    {
        DataDirectory = DataDirectory,
        TimeProvider = Time,
        Durability = Durability,
        SweepInterval = TimeSpan.FromSeconds(2),
        Retention = new RetentionPolicies([new RetentionRule("aged/**", HundredSeconds), new RetentionRule("sized/**", OneMiB)]),
    };

    private ValueTask<RetentionResult> ApplyAsync(string name, RetentionPolicy policy) => Store.ApplyRetentionAsync(name, policy, Ct);

    /// <summary>Appends <paramref name="count"/> chunks of 64 KiB (one frame each); returns them.</summary>
    private async Task<List<byte[]>> FillAsync(string name, int count, int seed = 1)
    {
        var chunks = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var chunk = Filler(Chunk, seed * 10_000 + i);
            Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync(name, chunk, Binary)).Status);
            chunks.Add(chunk);
        }
        return chunks;
    }

    [Fact]
    public async Task Trimming_8_MiB_to_1_MiB_returns_the_disk_space_and_drops_the_frame_records()
    {
        await CreatedAsync("sized/big", Binary);
        var chunks = await FillAsync("sized/big", 128);
        await Store.CheckpointAsync();
        var before = Store.AllocatedBytesOf("sized/big");
        Assert.True(before >= 8 << 20, $"{before} bytes allocated before");
        Assert.Equal(128, Store.StoredRecordsOf("sized/big").Frames);

        var result = await ApplyAsync("sized/big", OneMiB);

        Assert.Equal(RetentionStatus.Trimmed, result.Status);
        Assert.Equal(7L << 20, result.RetainedStart.Position);
        Assert.Equal(7L << 20, result.BytesDropped);
        Assert.Equal(7L << 20, result.BytesFreed);
        var after = Store.AllocatedBytesOf("sized/big");
        Assert.True(after <= (1 << 20) + 4096, $"{after} bytes allocated after the trim (before: {before})");
        Assert.Equal(16, Store.IndexedOf("sized/big").Frames);
        await Store.CheckpointAsync();
        Assert.Equal(16, Store.StoredRecordsOf("sized/big").Frames);
        Assert.Equal(8L << 20, new FileInfo(DataFileOf(await IdOfAsync("sized/big"))).Length);

        var below = await ReadAsync("sized/big", 0);
        Assert.Equal(ReadStatus.BeforeRetainedStart, below.Status);
        Assert.Equal(7L << 20, below.Info!.RetainedStart.Position);
        Assert.Equal(chunks.Skip(112).SelectMany(c => c).ToArray(), BytesOf(await ReadFromStartAsync("sized/big")));
        Assert.Equal(7L << 20, (await InfoAsync("sized/big")).RetainedStart.Position);

        // After a restart the first pass finds the holes already there and reports nothing more freed.
        await RestartAsync();
        Assert.Equal(new RetentionResult(RetentionStatus.Unchanged, new(7L << 20)), await ApplyAsync("sized/big", OneMiB));
        Assert.True(Store.AllocatedBytesOf("sized/big") <= (1 << 20) + 4096);
    }

    [Fact]
    public async Task The_retained_start_survives_a_crash_before_the_checkpoint_and_a_restart_after_it()
    {
        await CreatedAsync("sized/s", Binary);
        var chunks = await FillAsync("sized/s", 20);
        Store.Faults.SuppressCheckpoints = true;
        Assert.Equal(4L * Chunk, (await ApplyAsync("sized/s", OneMiB)).RetainedStart.Position);

        // Stopped like a crash: the start is only in the commit log, which the next open replays.
        await RestartAsync();
        Assert.Equal(4L * Chunk, (await InfoAsync("sized/s")).RetainedStart.Position);
        Assert.Equal(ReadStatus.BeforeRetainedStart, (await ReadAsync("sized/s", 3L * Chunk)).Status);
        Assert.Equal(chunks.Skip(4).SelectMany(c => c).ToArray(), BytesOf(await ReadFromStartAsync("sized/s")));

        await RestartAsync();
        Assert.Equal(4L * Chunk, (await InfoAsync("sized/s")).RetainedStart.Position);
        Assert.Equal(chunks.Skip(4).SelectMany(c => c).ToArray(), BytesOf(await ReadFromStartAsync("sized/s")));
    }

    [Fact]
    public async Task An_append_after_a_trim_keeps_the_start_in_the_state_it_writes()
    {
        await CreatedAsync("sized/a", Binary);
        await FillAsync("sized/a", 20);
        await ApplyAsync("sized/a", OneMiB);
        // The append's state record is applied after the trim's: it must carry the start too.
        await FillAsync("sized/a", 1, seed: 2);
        await Store.CheckpointAsync();
        await RestartAsync();

        var info = await InfoAsync("sized/a");
        Assert.Equal(4L * Chunk, info.RetainedStart.Position);
        Assert.Equal(21L * Chunk, info.Tail.Position);
    }

    [Fact]
    public async Task A_json_stream_reads_from_its_retained_start_before_and_after_a_restart()
    {
        await CreatedAsync("sized/json", Json);
        var big = new string('x', 300_000);
        for (var i = 0; i < 5; i++)
        {
            // Each message spans several frames: the start must land on the next message.
            Assert.Equal(AppendStatus.Appended, (await AppendAsync("sized/json", $"{{\"n\":{i},\"pad\":\"{big}\"}}", Json)).Status);
        }
        var result = await ApplyAsync("sized/json", OneMiB);
        Assert.Equal(RetentionStatus.Trimmed, result.Status);

        for (var restart = 0; restart < 2; restart++)
        {
            var read = await ReadFromStartAsync("sized/json");
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.StartsWith("[{\"n\":2,", JsonOf(read), StringComparison.Ordinal);
            Assert.Equal(ReadStatus.Ok, (await ReadAsync("sized/json", result.RetainedStart.Position)).Status);
            await Store.CheckpointAsync();
            await RestartAsync();
        }
    }

    [Fact]
    public async Task A_read_that_races_a_free_answers_410_and_never_marks_the_stream_corrupt()
    {
        await CreatedAsync("sized/race", Binary);
        await FillAsync("sized/race", 20);
        var raced = false;
        Store.Faults.BeforeCopy = () =>
        {
            if (!raced)
            {
                raced = true;
                // The read has chosen its frames; retention now publishes a start past them and frees their pages.
                Store.ApplyRetentionAsync("sized/race", OneMiB, Ct).AsTask().GetAwaiter().GetResult();
            }
        };

        var read = await ReadAsync("sized/race", 0, maxBytes: Chunk);

        Assert.True(raced);
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        Assert.Equal(4L * Chunk, read.Info!.RetainedStart.Position);
        Store.Faults.BeforeCopy = null;
        Assert.Equal(ReadStatus.Ok, (await ReadFromStartAsync("sized/race")).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("sized/race", "more", Binary)).Status);
    }

    [Fact]
    public async Task A_restart_between_persisting_the_start_and_freeing_frees_on_the_next_pass()
    {
        await CreatedAsync("sized/r", Binary);
        await FillAsync("sized/r", 32);
        await Store.CheckpointAsync();
        Store.Faults.SkipFree = true;
        var trimmed = await ApplyAsync("sized/r", OneMiB);
        Assert.Equal(0, trimmed.BytesFreed);
        Assert.True(Store.AllocatedBytesOf("sized/r") >= 2 << 20);
        Store.Faults.SuppressCheckpoints = true;
        await RestartAsync();

        var next = await ApplyAsync("sized/r", OneMiB);

        Assert.Equal(RetentionStatus.Unchanged, next.Status);
        Assert.Equal(trimmed.RetainedStart, next.RetainedStart);
        Assert.Equal(1L << 20, next.BytesFreed);
        Assert.True(Store.AllocatedBytesOf("sized/r") <= (1 << 20) + 4096);
        Assert.Equal(16, Store.IndexedOf("sized/r").Frames);
        Assert.Equal(ReadStatus.Ok, (await ReadFromStartAsync("sized/r")).Status);
    }

    [Fact]
    public async Task A_trim_whose_commit_fails_frees_nothing_and_keeps_the_old_start()
    {
        await CreatedAsync("sized/f", Binary);
        var chunks = await FillAsync("sized/f", 32);
        Store.Faults.BeforeSync = FileStoreFaults.DiskFull;

        await Assert.ThrowsAsync<IOException>(async () => await ApplyAsync("sized/f", OneMiB));

        Store.Faults.BeforeSync = null;
        Assert.Equal(0, (await InfoAsync("sized/f")).RetainedStart.Position);
        Assert.True(Store.AllocatedBytesOf("sized/f") >= 2 << 20);
        Assert.Equal(chunks.SelectMany(c => c).ToArray(), BytesOf(await ReadFromStartAsync("sized/f")));
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("sized/f", "x", Binary)).Status);
        await RestartAsync();
        Assert.Equal(0, (await InfoAsync("sized/f")).RetainedStart.Position);
        Assert.Equal(RetentionStatus.Trimmed, (await ApplyAsync("sized/f", OneMiB)).Status);
    }

    [Fact]
    public async Task Age_retention_uses_the_samples_persisted_before_a_restart()
    {
        await CreatedAsync("aged/log", TextPlain, body: "a0;");
        Time.Advance(TimeSpan.FromSeconds(10));
        var second = (await AppendedAsync("aged/log", "b1;")).NextOffset.Position - 3;
        Time.Advance(TimeSpan.FromSeconds(10));
        await AppendedAsync("aged/log", "c2;");
        await Store.CheckpointAsync();
        await RestartAsync();
        Assert.Equal(0, Store.IndexedOf("aged/log").Times);

        // At +115 s only the first append (older than 100 s) may go; the second's sample (t+10) says so.
        Time.Advance(TimeSpan.FromSeconds(95));
        var first = await ApplyAsync("aged/log", HundredSeconds);
        Assert.Equal(RetentionStatus.Trimmed, first.Status);
        Assert.Equal(second, first.RetainedStart.Position);
        Assert.Equal("b1;c2;", await ReadTextAsync("aged/log", second));

        // At +125 s the last append (t+20, within one sample interval of its sample) is old too: all of it goes.
        Time.Advance(TimeSpan.FromSeconds(10));
        var all = await ApplyAsync("aged/log", HundredSeconds);
        Assert.Equal(9, all.RetainedStart.Position);
        await Store.CheckpointAsync();
        Assert.Equal((0, 0), Store.StoredRecordsOf("aged/log"));
    }

    [Fact]
    public async Task Streams_without_an_age_policy_record_no_append_times()
    {
        await CreatedAsync("sized/plain", TextPlain, body: "x");
        await CreatedAsync("other", TextPlain, body: "x");
        await CreatedAsync("aged/t", TextPlain, body: "x");
        Time.Advance(TimeSpan.FromSeconds(5));
        await AppendedAsync("sized/plain", "y");
        await AppendedAsync("other", "y");
        await AppendedAsync("aged/t", "y");
        await Store.CheckpointAsync();

        Assert.Equal(0, Store.StoredRecordsOf("sized/plain").Times);
        Assert.Equal(0, Store.StoredRecordsOf("other").Times);
        Assert.Equal(2, Store.StoredRecordsOf("aged/t").Times);
    }

    [Fact]
    public async Task A_fork_reading_through_a_trimmed_source_answers_410_below_the_source_start()
    {
        await CreatedAsync("sized/src", Binary);
        await FillAsync("sized/src", 20);
        await CreatedAsync("fork", Binary, fork: ForkOf("sized/src", 18L * Chunk));
        await ApplyAsync("sized/src", OneMiB);

        var read = await ReadAsync("fork", Chunk);
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        Assert.Equal(4L * Chunk, read.Info!.RetainedStart.Position);
        Assert.Equal(ReadStatus.Ok, (await ReadAsync("fork", 4L * Chunk)).Status);
        await RestartAsync();
        Assert.Equal(4L * Chunk, (await InfoAsync("fork")).RetainedStart.Position);
        Assert.Equal(ReadStatus.BeforeRetainedStart, (await ReadAsync("fork", 0)).Status);
    }

    /// <summary>
    /// A one-off measurement, not an assertion of speed: a 1 GiB stream trimmed to 100 MiB, with the disk space its data
    /// file holds (data extents, as <c>du</c> counts them) before and after, and the pass's duration. Run with
    /// <c>DS_MEASURE_RETENTION=1 dotnet test tests/DurableStreams.Durability.Tests -c Release --filter Category=Measurement
    /// --logger "console;verbosity=detailed"</c>.
    /// </summary>
    [Fact]
    [Trait("Category", "Measurement")]
    public async Task Measure_trimming_a_1_GiB_stream_to_100_MiB()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable("DS_MEASURE_RETENTION") == "1", "Set DS_MEASURE_RETENTION=1 to measure.");
        var output = TestContext.Current.TestOutputHelper!;
        await CreatedAsync("sized/huge", Binary);
        var chunk = Filler(Chunk, 7);
        for (var i = 0; i < 16_384; i++)
        {
            Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("sized/huge", chunk, Binary)).Status);
        }
        await Store.CheckpointAsync();
        var policy = new RetentionPolicy(null, 100L << 20);
        var before = Store.AllocatedBytesOf("sized/huge");
        var records = Store.StoredRecordsOf("sized/huge");
        // An appender on the same stream meanwhile: how long does an append wait while the pass commits and punches?
        using var stop = new CancellationTokenSource();
        var latencies = new List<double>();
        var appender = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                Assert.Equal(AppendStatus.Appended, (await AppendBytesAsync("sized/huge", [1, 2, 3], Binary)).Status);
                latencies.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }, Ct);
        await Task.Delay(200, Ct);
        var baseline = latencies.Count;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await ApplyAsync("sized/huge", policy);
        var pass = clock.Elapsed;
        await stop.CancelAsync();
        await appender;
        var during = latencies.Skip(baseline).ToList();
        output.WriteLine($"appends to the same stream before the pass: {baseline}, p50 {Percentile(latencies.Take(baseline), 0.5):N2} ms; during it: {during.Count}, max {(during.Count == 0 ? 0 : during.Max()):N2} ms");
        var after = Store.AllocatedBytesOf("sized/huge");
        clock.Restart();
        await Store.CheckpointAsync();
        var checkpoint = clock.Elapsed;
        output.WriteLine($"allocated before {before:N0} B, after {after:N0} B; dropped {result.BytesDropped:N0}, freed {result.BytesFreed:N0}");
        output.WriteLine($"frame records before {records.Frames:N0}, after {Store.StoredRecordsOf("sized/huge").Frames:N0}");
        output.WriteLine($"pass (commit + publish + punch) {pass.TotalMilliseconds:N1} ms; checkpoint applying DropBelow {checkpoint.TotalMilliseconds:N1} ms");
        clock.Restart();
        var again = await ApplyAsync("sized/huge", policy);
        output.WriteLine($"second pass {clock.Elapsed.TotalMilliseconds:N1} ms ({again.Status})");
        await RestartAsync();
        clock.Restart();
        var afterRestart = await ApplyAsync("sized/huge", policy);
        output.WriteLine($"first pass after a restart (finds the holes with SEEK_DATA) {clock.Elapsed.TotalMilliseconds:N1} ms, freed {afterRestart.BytesFreed:N0}");
    }

    private static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[(int)Math.Min(sorted.Count - 1, p * sorted.Count)];
    }

    [Fact]
    public void The_state_record_is_version_3_only_when_a_prefix_was_dropped()
    {
        var state = new StreamState { ContentType = Binary, Requested = new StreamConfiguration(Binary, null, null, null, null, 0), Tail = 100 };
        Assert.Equal(2, Records.EncodeState(state)[0]);
        var trimmed = Records.EncodeState(state, 40);
        Assert.Equal(3, trimmed[0]);
        var decoded = new StreamState { ContentType = Binary, Requested = state.Requested };
        Records.DecodeStateInto(trimmed, decoded, out var start);
        Assert.Equal((100L, 40L), (decoded.Tail, start));
        var newer = (byte[])trimmed.Clone();
        newer[0] = 5; // 4 is a compacted stream's (CompactionTests)
        Assert.Contains("newer build", Assert.Throws<InvalidDataException>(() => Records.DecodeStateInto(newer, decoded, out _)).Message, StringComparison.Ordinal);
    }
}
