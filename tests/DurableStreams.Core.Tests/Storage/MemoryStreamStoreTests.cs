using DurableStreams.Core.Compaction;
using DurableStreams.Core.Memory;
using DurableStreams.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Core.Tests.Storage;

/// <summary>The store contract against <see cref="MemoryStreamStore"/>, plus what only the memory store has.</summary>
public sealed class MemoryStreamStoreTests : StreamStoreContractTests
{
    private static readonly TimeSpan Sweep = TimeSpan.FromSeconds(2);

    protected override TimeSpan SweepInterval => Sweep;

    protected override Task<IStreamStore> CreateStoreAsync(FakeTimeProvider time) =>
        Task.FromResult<IStreamStore>(new MemoryStreamStore(new MemoryStreamStoreOptions
        {
            TimeProvider = time,
            SweepInterval = Sweep,
            MaxForkDepth = Limits.MaxForkDepth,
            MaxMessagesPerAppend = Limits.MaxMessagesPerAppend,
            Retention = Limits.Retention ?? DurableStreams.Core.Retention.RetentionPolicies.None,
            ProducerRetention = ProducerRetention,
        }));

    protected override ValueTask<int> CountLiveStreamsAsync(IStreamStore store) => ValueTask.FromResult(((MemoryStreamStore)store).Count);

    private MemoryStreamStore Memory => (MemoryStreamStore)Store;

    [Fact]
    public async Task Count_includes_live_streams_and_excludes_soft_deleted_ones()
    {
        await CreatedAsync("a");
        await CreatedAsync("b", fork: ForkOf("a"));
        Assert.Equal(2, Memory.Count);

        await DeleteAsync("a");

        Assert.Equal(1, Memory.Count);
    }

    [Fact]
    public async Task The_sweeper_runs_on_its_interval()
    {
        await CreatedAsync("s", ttl: 1);
        Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, Memory.Count);

        Time.Advance(Sweep - TimeSpan.FromSeconds(1));

        Assert.Equal(0, Memory.Count);
    }

    [Fact]
    public async Task The_sweeper_soft_deletes_an_expired_source_that_forks_still_need()
    {
        await CreatedAsync("src", body: "abc", ttl: 1);
        await CreatedAsync("fork", fork: ForkOf("src"), ttl: 3600);

        Time.Advance(Sweep);

        Assert.Equal(1, Memory.Count);
        Assert.Equal("abc", await ReadTextAsync("fork"));
    }

    /// <summary>A store whose sweeper never runs within a test, to reach the on-access expiry paths.</summary>
    private MemoryStreamStore UnsweptStore() =>
        new(new MemoryStreamStoreOptions { TimeProvider = Time, SweepInterval = TimeSpan.FromDays(1) });

    [Fact]
    public async Task Expiry_is_detected_on_access_before_the_sweeper_runs()
    {
        await using var store = UnsweptStore();
        var ct = TestContext.Current.CancellationToken;
        await store.CreateAsync("s", new CreateStreamRequest { TtlSeconds = 10 }, ct);
        await store.CreateAsync("t", new CreateStreamRequest { TtlSeconds = 10 }, ct);
        Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(2, store.Count);

        var read = await store.ReadAsync("s", new ReadRequest(DurableStreams.Protocol.OffsetQuery.Beginning, 100), ct);
        var recreate = await store.CreateAsync("t", new CreateStreamRequest { ContentType = Json }, ct);

        Assert.Equal(ReadStatus.NotFound, read.Status);
        Assert.Equal(CreateStatus.Created, recreate.Status);
        Assert.Equal(1, store.Count);
    }

    [Fact]
    public async Task Wait_on_an_expired_stream_is_Gone_before_the_sweeper_runs()
    {
        await using var store = UnsweptStore();
        var ct = TestContext.Current.CancellationToken;
        await store.CreateAsync("s", new CreateStreamRequest { TtlSeconds = 10 }, ct);
        Time.Advance(TimeSpan.FromSeconds(10));

        var wait = store.WaitAsync("s", DurableStreams.Protocol.StreamOffset.Zero, TimeSpan.FromSeconds(5), ct).AsTask();
        Time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(WaitOutcome.Gone, await wait.WaitAsync(TimeSpan.FromSeconds(30), ct));
    }

    [Fact]
    public async Task The_json_depth_limit_comes_from_the_options()
    {
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = Time, MaxJsonDepth = 2 });
        await store.CreateAsync("j", new CreateStreamRequest { ContentType = Json }, TestContext.Current.CancellationToken);

        var shallow = await store.AppendAsync("j", new AppendRequest { ContentType = Json, Body = "[[1]]"u8.ToArray() }, TestContext.Current.CancellationToken);
        var deep = await store.AppendAsync("j", new AppendRequest { ContentType = Json, Body = "[[[1]]]"u8.ToArray() }, TestContext.Current.CancellationToken);
        var deepCreate = await store.CreateAsync("k", new CreateStreamRequest { ContentType = Json, Body = "[[[1]]]"u8.ToArray() }, TestContext.Current.CancellationToken);

        Assert.Equal(AppendStatus.Appended, shallow.Status);
        Assert.Equal(AppendStatus.JsonTooDeep, deep.Status);
        Assert.Equal(CreateStatus.JsonTooDeep, deepCreate.Status);
    }

    [Fact]
    public async Task Incarnations_are_unique_across_store_instances()
    {
        await using var other = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = Time });
        var mine = await CreatedAsync("s");
        var theirs = await other.CreateAsync("s", new CreateStreamRequest(), TestContext.Current.CancellationToken);

        Assert.NotNull(theirs.Info);
        Assert.NotEqual(0, mine.Incarnation);
        Assert.NotEqual(0, theirs.Info.Incarnation);
    }

    [Fact]
    public async Task Disposing_the_store_stops_the_sweeper()
    {
        var time = new FakeTimeProvider(StartTime);
        var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = time, SweepInterval = Sweep });
        await store.CreateAsync("s", new CreateStreamRequest { TtlSeconds = 1 }, TestContext.Current.CancellationToken);

        await store.DisposeAsync();
        time.Advance(Sweep * 3);

        Assert.Equal(1, store.Count);
    }

    [Fact]
    public void Default_options_use_the_system_clock_a_one_second_sweep_and_the_default_json_depth()
    {
        var options = new MemoryStreamStoreOptions();

        Assert.Same(TimeProvider.System, options.TimeProvider);
        Assert.Equal(TimeSpan.FromSeconds(1), options.SweepInterval);
        Assert.Equal(DurableStreams.Protocol.JsonFraming.DefaultMaxDepth, options.MaxJsonDepth);
    }

    [Fact]
    public async Task Retention_gives_the_dropped_blocks_back()
    {
        await UseLimitsAsync(Limits with { Retention = new DurableStreams.Core.Retention.RetentionPolicies([], new(null, 1 << 20)) });
        await CreatedAsync("big", Binary);
        var chunk = new byte[10_000];
        for (var written = 0; written < 10 << 20; written += chunk.Length)
        {
            await AppendBytesAsync("big", chunk, Binary);
        }
        var before = Memory.AllocatedBytes("big");
        Assert.True(before >= 10 << 20, $"before {before}");

        var result = await Memory.ApplyRetentionAsync("big", new(null, 1 << 20), Ct);

        var after = Memory.AllocatedBytes("big");
        Assert.Equal(DurableStreams.Core.Retention.RetentionStatus.Trimmed, result.Status);
        Assert.Equal(before - after, result.BytesFreed);
        // At most the kept MiB plus the block that straddles the start.
        Assert.InRange(after, 1 << 20, (1 << 20) + MessageLog.MaxBlockBytes);
    }

    [Fact]
    public async Task Only_streams_whose_policy_has_an_age_bound_record_append_times()
    {
        var aged = new DurableStreams.Core.Retention.RetentionRule("aged/**", new(TimeSpan.FromDays(1), null));
        var sized = new DurableStreams.Core.Retention.RetentionRule("sized/**", new(null, 1000));
        await UseLimitsAsync(Limits with { Retention = new DurableStreams.Core.Retention.RetentionPolicies([aged, sized]) });
        foreach (var name in new[] { "aged/a", "sized/a", "other" })
        {
            await CreatedAsync(name, body: "x");
            await AppendedAsync(name, "y");
        }

        Assert.True(Memory.RecordsAppendTimes("aged/a"));
        Assert.False(Memory.RecordsAppendTimes("sized/a"));
        Assert.False(Memory.RecordsAppendTimes("other"));
    }

    [Fact]
    public async Task A_store_without_policies_records_no_append_times()
    {
        await CreatedAsync("s", body: "x");

        Assert.False(Memory.RecordsAppendTimes("s"));
    }

    [Fact]
    public async Task A_fork_read_that_raced_a_trim_of_its_source_answers_BeforeRetainedStart()
    {
        await CreatedAsync("src", Binary);
        await AppendedAsync("src", "aaaa", Binary);
        await AppendedAsync("src", "bbbb", Binary);
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        ReadResult? read = null;
        var store = Memory;
        var reader = new Thread(() => read = ReadOnThisThread(store, "fork"));

        // The fork's read resolves its start (0) without the source's lock, then waits for it to gather; the source is
        // trimmed meanwhile.
        ValueTask<DurableStreams.Core.Retention.RetentionResult> trim;
        lock (Memory.GateOf("src"))
        {
            reader.Start();
            Assert.True(SpinWait.SpinUntil(() => (reader.ThreadState & ThreadState.WaitSleepJoin) != 0, HangGuard));
            // The memory store trims synchronously, under the lock this thread already holds.
            trim = Memory.ApplyRetentionAsync("src", new(null, 4), Ct);
            Assert.True(trim.IsCompleted);
        }
        Assert.Equal(DurableStreams.Core.Retention.RetentionStatus.Trimmed, (await trim).Status);
        Assert.True(reader.Join(HangGuard));

        Assert.NotNull(read);
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        Assert.Equal(At(4), read.Info?.RetainedStart);
    }

    /// <summary>A JSON stream of six upserts of one key; returns its tail. Its snapshot: start, the last upsert, end.</summary>
    private async Task<long> OneKeySixTimesAsync(string name)
    {
        await CreatedAsync(name, Json);
        var body = "[" + string.Join(",", Enumerable.Range(1, 6).Select(UpsertA)) + "]";
        return (await AppendedAsync(name, body, Json)).NextOffset.Position;
    }

    private static string UpsertA(int value) => $$$"""{"type":"t","key":"a","value":{{{value}}},"headers":{"operation":"upsert"}}""";

    private static string SnapshotOf(string message) =>
        $$$"""[{"headers":{"control":"snapshot-start"}},{{{message}}},{"headers":{"control":"snapshot-end"}}""";

    private static Task<CompactionOutcome> CompactAsync(IStreamStore store, string name) =>
        StateCompactor.CompactAsync(store, name, CompactionPolicy.State, force: true, TestContext.Current.CancellationToken).AsTask();

    /// <summary>Makes the next read of <paramref name="name"/> compact it between resolving its start and gathering.</summary>
    private Func<bool> CompactDuringNextRead(string name)
    {
        var compacted = false;
        Memory.AfterReadResolved = read =>
        {
            if (read == name && !compacted)
            {
                compacted = true;
                Assert.Equal(CompactionStatus.Compacted, CompactAsync(Memory, name).GetAwaiter().GetResult().Status);
            }
        };
        return () => compacted;
    }

    [Fact]
    public async Task A_read_that_raced_a_compaction_of_its_range_answers_BeforeRetainedStart()
    {
        var end = await OneKeySixTimesAsync("j");
        // The fifth upsert's offset, generation 0: inside the range the snapshot will occupy.
        var fifth = end - 2 * (UpsertA(6).Length + 1);
        var compacted = CompactDuringNextRead("j");

        using var read = await ReadAsync("j", fifth);

        Assert.True(compacted());
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        var info = await InfoAsync("j");
        Assert.Equal(1, info.OffsetGeneration);
        Assert.True(info.RetainedStart.Position <= fifth, "the old offset lies inside the snapshot's range");
        Assert.Equal(info.RetainedStart, read.Info?.RetainedStart);
    }

    [Fact]
    public async Task A_read_from_the_start_that_raced_a_compaction_reads_the_snapshot()
    {
        var end = await OneKeySixTimesAsync("j");
        var compacted = CompactDuringNextRead("j");

        using var read = await ReadFromStartAsync("j");

        Assert.True(compacted());
        Assert.Equal(ReadStatus.Ok, read.Status);
        Assert.Equal(1, read.Start.Generation);
        Assert.Equal((await InfoAsync("j")).RetainedStart, read.Start);
        Assert.Equal(At(end), read.Next);
        Assert.Equal(SnapshotOf(UpsertA(6)) + "]", JsonOf(read));
    }

    [Fact]
    public async Task A_fork_read_that_raced_a_compaction_of_its_source_answers_BeforeRetainedStart()
    {
        var end = await OneKeySixTimesAsync("src");
        await CreatedAsync("fork", Json, fork: ForkOf("src"));
        ReadResult? read = null;
        var store = Memory;
        var reader = new Thread(() => read = ReadOnThisThread(store, "fork"));

        // The fork resolves its start (0) and waits for the source's lock to gather; the source is compacted meanwhile.
        Task<CompactionOutcome> compaction;
        lock (Memory.GateOf("src"))
        {
            reader.Start();
            Assert.True(SpinWait.SpinUntil(() => (reader.ThreadState & ThreadState.WaitSleepJoin) != 0, HangGuard));
            // The memory store compacts synchronously: its reads and its commit take the lock this thread holds.
            compaction = CompactAsync(Memory, "src");
            Assert.True(compaction.IsCompleted);
        }
        Assert.Equal(CompactionStatus.Compacted, (await compaction).Status);
        Assert.True(reader.Join(HangGuard));

        Assert.NotNull(read);
        Assert.Equal(ReadStatus.BeforeRetainedStart, read.Status);
        Assert.Equal(At(end), read.Info?.RetainedStart);
    }

    [Fact]
    public async Task A_compaction_frees_the_blocks_below_the_snapshot_and_keeps_the_bytes_after_it()
    {
        await CreatedAsync("j", Json);
        // Enough upserts of one key to fill several blocks; the blocks straddle message boundaries.
        for (var i = 0; i < 2000; i++)
        {
            await AppendedAsync("j", "[" + UpsertA(i) + "]", Json);
        }
        var before = Memory.AllocatedBytes("j");
        var end = (await InfoAsync("j")).Tail.Position;

        var outcome = await CompactAsync(Memory, "j");
        await AppendedAsync("j", "[" + UpsertA(-1) + "]", Json);

        Assert.Equal(CompactionStatus.Compacted, outcome.Status);
        Assert.True(outcome.BytesFreed > before / 2, $"freed {outcome.BytesFreed} of {before}");
        Assert.True(Memory.AllocatedBytes("j") < before / 4, $"{Memory.AllocatedBytes("j")} of {before} still allocated");
        Assert.Equal(SnapshotOf(UpsertA(1999)) + "," + UpsertA(-1) + "]", await ReadJsonAsync("j"));
        Assert.Equal("[" + UpsertA(-1) + "]", JsonOf(await ReadAsync("j", end)));
    }

    /// <summary>A read that blocks its thread (the memory store reads synchronously).</summary>
    private static ReadResult ReadOnThisThread(MemoryStreamStore store, string name)
    {
        var read = store.ReadAsync(name, new ReadRequest(DurableStreams.Protocol.OffsetQuery.Beginning, Unlimited), TestContext.Current.CancellationToken);
        return read.IsCompletedSuccessfully ? read.Result : throw new InvalidOperationException("The memory store read asynchronously.");
    }
}
