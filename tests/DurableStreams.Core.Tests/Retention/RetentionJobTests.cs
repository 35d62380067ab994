using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using DurableStreams.Core.Compaction;
using DurableStreams.Core.Memory;
using DurableStreams.Core.Retention;
using DurableStreams.Protocol;
using DurableStreams.Protocol.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Core.Tests.Retention;

/// <summary>
/// The background retention job, on a fake clock: which streams a pass visits, failures, one pass at a time, disposal,
/// and its instruments. The tests of this class run one at a time (xUnit runs a class's tests in sequence), so the
/// meter listener sees only this class's jobs.
/// </summary>
public sealed class RetentionJobTests : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(30);
    private static readonly RetentionPolicy KeepFour = new(null, 4);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly ListLoggerFactory _logs = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _logs.Dispose();

    private static RetentionPolicies Logs(RetentionPolicy policy) => new([new RetentionRule("logs/**", policy)]);

    private RetentionJob Job(FakeStore store, RetentionPolicies? policies = null) =>
        new(store, store, policies ?? Logs(KeepFour), Interval, _time, _logs);

    /// <summary>Moves the clock one interval and waits for the pass that tick started.</summary>
    private async Task<RetentionPass> TickAsync(RetentionJob job)
    {
        var before = job.CurrentPass;
        _time.Advance(Interval);
        var pass = job.CurrentPass;
        Assert.NotNull(pass);
        Assert.NotSame(before, pass);
        return await pass.WaitAsync(HangGuard, Ct);
    }

    [Fact]
    public async Task Each_tick_applies_every_streams_policy_and_skips_streams_that_keep_everything()
    {
        var store = new FakeStore("logs/a", "other", "logs/deep/b");
        await using var job = Job(store);
        _time.Advance(Interval - TimeSpan.FromSeconds(1));
        Assert.Null(job.CurrentPass);

        var pass = await TickAsync(job);

        Assert.Equal(["logs/a", "logs/deep/b"], store.Calls.Select(c => c.Name));
        Assert.All(store.Calls, c => Assert.Same(KeepFour, c.Policy));
        Assert.Equal(new RetentionPass(2, 2, 2 * FakeStore.Dropped, 2 * FakeStore.Freed, 0), pass);

        await TickAsync(job);
        Assert.Equal(4, store.Calls.Count);
    }

    [Fact]
    public async Task The_job_trims_a_memory_store_by_the_policy_it_resolves_for_each_name()
    {
        var policies = Logs(KeepFour);
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = _time, Retention = policies });
        foreach (var name in new[] { "logs/a", "keep" })
        {
            await store.CreateAsync(name, new CreateStreamRequest { ContentType = "text/plain" }, Ct);
            foreach (var body in new[] { "aaaa", "bbbb", "cccc" })
            {
                await store.AppendAsync(name, new AppendRequest { ContentType = "text/plain", Body = System.Text.Encoding.UTF8.GetBytes(body) }, Ct);
            }
        }
        await using var job = RetentionJob.StartFor(store, policies, Interval, _time, _logs);
        Assert.NotNull(job);

        _time.Advance(Interval);
        var pass = await job.CurrentPass!.WaitAsync(HangGuard, Ct);

        Assert.Equal(new RetentionPass(1, 1, 8, 0, 0), pass with { BytesFreed = 0 });
        Assert.Equal(new StreamOffset(8), (await store.GetMetadataAsync("logs/a", Ct)).Info!.RetainedStart);
        Assert.Equal(StreamOffset.Zero, (await store.GetMetadataAsync("keep", Ct)).Info!.RetainedStart);
    }

    [Fact]
    public async Task StartFor_starts_nothing_without_a_policy_that_drops_data_or_for_a_store_without_retention()
    {
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = _time });

        Assert.Null(RetentionJob.StartFor(store, RetentionPolicies.None, Interval, _time));
        Assert.Null(RetentionJob.StartFor(store, new RetentionPolicies([new RetentionRule("**", RetentionPolicy.KeepAll)]), Interval, _time));
        Assert.Null(RetentionJob.StartFor(new StoreWithoutRetention(), Logs(KeepFour), Interval, _time));
    }

    [Fact]
    public async Task One_streams_failure_is_logged_and_the_pass_goes_on()
    {
        var store = new FakeStore("logs/a", "logs/bad", "logs/c") { FailFor = "logs/bad" };
        await using var job = Job(store);

        var pass = await TickAsync(job);

        Assert.Equal(["logs/a", "logs/bad", "logs/c"], store.Calls.Select(c => c.Name));
        Assert.Equal(new RetentionPass(3, 2, 2 * FakeStore.Dropped, 2 * FakeStore.Freed, 1), pass);
        var entry = Assert.Single(_logs.Entries, e => e.Level >= LogLevel.Warning);
        Assert.Equal(LogEvents.RetentionStreamFailed, entry.EventId);
        Assert.Contains("logs/bad", entry.Message, StringComparison.Ordinal);
        Assert.IsType<IOException>(entry.Exception);

        // The next pass tries it again.
        await TickAsync(job);
        Assert.Equal(6, store.Calls.Count);
    }

    [Fact]
    public async Task A_pass_that_cannot_list_the_streams_is_logged_and_the_next_tick_retries()
    {
        var store = new FakeStore("logs/a") { FailListing = true };
        await using var job = Job(store);

        var failed = await TickAsync(job);
        store.FailListing = false;
        var next = await TickAsync(job);

        Assert.Equal(default, failed);
        Assert.Equal(LogEvents.RetentionPassFailed, Assert.Single(_logs.Entries).EventId);
        Assert.Equal(1, next.Trimmed);
    }

    [Fact]
    public async Task A_tick_during_a_running_pass_is_skipped_and_a_manual_run_joins_it()
    {
        var store = new FakeStore("logs/a", "logs/b") { Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        await using var job = Job(store);
        _time.Advance(Interval);
        var first = job.CurrentPass!;
        await store.Entered.Task.WaitAsync(HangGuard, Ct);

        _time.Advance(Interval);
        _time.Advance(Interval);

        Assert.Same(first, job.CurrentPass);
        Assert.Same(first, job.RunPassAsync());
        Assert.Equal(1, store.MostAtOnce);
        store.Hold.SetResult();
        Assert.Equal(2, (await first.WaitAsync(HangGuard, Ct)).Streams);
        Assert.Equal(2, store.Calls.Count);

        var second = await job.RunPassAsync().WaitAsync(HangGuard, Ct);

        Assert.Equal(2, second.Streams);
        Assert.Equal(4, store.Calls.Count);
        Assert.Equal(1, store.MostAtOnce);
    }

    [Fact]
    public async Task Dispose_cancels_a_running_pass_waits_for_it_and_stops_the_timer()
    {
        var store = new FakeStore("logs/a", "logs/b") { WaitForCancellation = true };
        var job = Job(store);
        _time.Advance(Interval);
        var running = job.CurrentPass!;
        await store.Entered.Task.WaitAsync(HangGuard, Ct);

        await job.DisposeAsync().AsTask().WaitAsync(HangGuard, Ct);

        Assert.True(running.IsCompleted);
        // The pass ended at the cancelled stream; nothing after it was visited.
        Assert.Single(store.Calls);
        _time.Advance(Interval * 3);
        Assert.Single(store.Calls);
        Assert.Same(running, job.CurrentPass);
        Assert.Throws<ObjectDisposedException>(() => { _ = job.RunPassAsync(); });
        Assert.Empty(_logs.Entries);
    }

    [Fact]
    public async Task Instruments_count_passes_trims_bytes_and_failures_and_the_lag_is_the_time_since_the_last_pass()
    {
        var measurements = new ConcurrentDictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == RetentionJob.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => measurements.AddOrUpdate(instrument.Name, value, (_, old) => old + value));
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => measurements[instrument.Name] = value);
        listener.Start();
        var store = new FakeStore("logs/a", "logs/bad", "logs/c", "other") { FailFor = "logs/bad" };
        await using var job = Job(store);

        _time.Advance(TimeSpan.FromSeconds(20));
        listener.RecordObservableInstruments();
        Assert.Equal(20, measurements["durable_streams.retention.lag"]);

        await TickAsync(job);
        await TickAsync(job);
        _time.Advance(TimeSpan.FromSeconds(15));
        listener.RecordObservableInstruments();

        Assert.Equal(2, measurements["durable_streams.retention.passes"]);
        Assert.Equal(4, measurements["durable_streams.retention.streams_trimmed"]);
        Assert.Equal(4 * FakeStore.Dropped, measurements["durable_streams.retention.dropped"]);
        Assert.Equal(4 * FakeStore.Freed, measurements["durable_streams.retention.freed"]);
        Assert.Equal(2, measurements["durable_streams.retention.failures"]);
        Assert.Equal(15, measurements["durable_streams.retention.lag"]);
        Assert.Equal(TimeSpan.FromSeconds(15), job.Lag);
    }

    [Fact]
    public async Task Storage_freed_by_a_pass_that_moved_no_start_is_counted()
    {
        var store = new FakeStore("logs/a", "logs/left") { LeftoversFor = "logs/left" };
        await using var job = Job(store);

        var pass = await TickAsync(job);

        Assert.Equal(1, pass.Trimmed);
        Assert.Equal(FakeStore.Dropped, pass.BytesDropped);
        Assert.Equal(2 * FakeStore.Freed, pass.BytesFreed);
    }

    private static readonly CompactionPolicy SmallCompaction = new() { MinBytes = 256, MinRatio = 2 };

    private static string UpsertA(int value) => $$$"""{"type":"t","key":"a","value":{{{value}}},"headers":{"operation":"upsert"}}""";

    private static string UpsertKey(int key) => $$$"""{"type":"t","key":"k{{{key}}}","value":0,"headers":{"operation":"upsert"}}""";

    private static async Task AppendJsonAsync(MemoryStreamStore store, string name, string message) =>
        Assert.Equal(AppendStatus.Appended, (await store.AppendAsync(name, new AppendRequest { ContentType = "application/json", Body = System.Text.Encoding.UTF8.GetBytes("[" + message + "]") }, Ct)).Status);

    /// <summary>A memory store whose "state/**" streams are compacted under <see cref="SmallCompaction"/>, and its job.</summary>
    private async Task<(MemoryStreamStore Store, RetentionJob Job)> CompactingAsync(RetentionPolicy? policy = null)
    {
        var policies = new RetentionPolicies([new RetentionRule("state/**", policy ?? new RetentionPolicy(null, null) { Compaction = SmallCompaction })]);
        var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = _time, Retention = policies });
        foreach (var name in new[] { "state/a", "other" })
        {
            await store.CreateAsync(name, new CreateStreamRequest { ContentType = "application/json" }, Ct);
        }
        var job = RetentionJob.StartFor(store, policies, Interval, _time, _logs);
        Assert.NotNull(job);
        return (store, job);
    }

    [Fact]
    public async Task The_job_compacts_a_stream_whose_policy_asks_for_it_once_it_is_due()
    {
        var (store, job) = await CompactingAsync();
        await using var _ = store;
        await using var __ = job;
        for (var i = 0; i < 3; i++)
        {
            await AppendJsonAsync(store, "state/a", UpsertA(i));
            await AppendJsonAsync(store, "other", UpsertA(i));
        }

        // 3 messages: below MinBytes (256), so not due yet.
        var early = await TickAsync(job);
        Assert.Equal((1, 0), (early.Streams, early.Compacted));
        for (var i = 3; i < 10; i++)
        {
            await AppendJsonAsync(store, "state/a", UpsertA(i));
        }
        var pass = await TickAsync(job);

        Assert.Equal((1, 1, 0), (pass.Streams, pass.Compacted, pass.Failed));
        var info = (await store.GetMetadataAsync("state/a", Ct)).Info!;
        Assert.Equal(1, info.OffsetGeneration);
        Assert.Equal(0, (await store.GetMetadataAsync("other", Ct)).Info!.OffsetGeneration);
        var entry = Assert.Single(_logs.Entries);
        Assert.Equal((LogLevel.Information, LogEvents.CompactionCompleted), (entry.Level, entry.EventId));
        Assert.Contains("state/a", entry.Message, StringComparison.Ordinal);

        // Nothing appended since: the next pass leaves it alone.
        Assert.Equal(0, (await TickAsync(job)).Compacted);
        Assert.Equal(1, (await store.GetMetadataAsync("state/a", Ct)).Info!.OffsetGeneration);
    }

    [Fact]
    public async Task The_job_trims_then_compacts_a_stream_whose_policy_does_both()
    {
        var (store, job) = await CompactingAsync(new RetentionPolicy(null, 600) { Compaction = SmallCompaction });
        await using var _ = store;
        await using var __ = job;
        for (var i = 0; i < 10; i++)
        {
            await AppendJsonAsync(store, "state/a", UpsertA(i));
        }

        var pass = await TickAsync(job);

        Assert.Equal((1, 1, 1), (pass.Streams, pass.Trimmed, pass.Compacted));
        var info = (await store.GetMetadataAsync("state/a", Ct)).Info!;
        Assert.Equal(1, info.OffsetGeneration);
    }

    [Fact]
    public async Task A_stream_whose_snapshot_was_not_smaller_is_not_read_again_until_it_grew_by_the_minimum()
    {
        var (store, job) = await CompactingAsync();
        await using var _ = store;
        await using var __ = job;
        var reads = 0;
        store.AfterReadResolved = name => reads += name == "state/a" ? 1 : 0;
        // Distinct keys: a snapshot keeps them all, plus its markers, so it is never smaller.
        var key = 0;
        for (; key < 5; key++)
        {
            await AppendJsonAsync(store, "state/a", UpsertKey(key));
        }

        await TickAsync(job);
        Assert.Equal(1, reads);
        await AppendJsonAsync(store, "state/a", UpsertKey(key++));
        await TickAsync(job);
        await TickAsync(job);
        Assert.Equal(1, reads);

        // Grown by MinBytes since: read again.
        for (var grown = 0; grown < SmallCompaction.MinBytes; grown += UpsertKey(key).Length + 1)
        {
            await AppendJsonAsync(store, "state/a", UpsertKey(key++));
        }
        await TickAsync(job);
        Assert.Equal(2, reads);
        Assert.Equal(0, (await store.GetMetadataAsync("state/a", Ct)).Info!.OffsetGeneration);
    }

    [Fact]
    public async Task StartFor_starts_a_job_for_compaction_alone_when_the_store_compacts()
    {
        var policies = new RetentionPolicies([new RetentionRule("state/**", new RetentionPolicy(null, null) { Compaction = CompactionPolicy.State })]);
        await using var store = new MemoryStreamStore(new MemoryStreamStoreOptions { TimeProvider = _time, Retention = policies });

        await using var job = RetentionJob.StartFor(store, policies, Interval, _time);

        Assert.NotNull(job);
        Assert.False(policies.Any);
        Assert.Null(RetentionJob.StartFor(new StoreWithoutRetention(), policies, Interval, _time));
    }

    [Fact]
    public async Task Compaction_instruments_count_runs_by_outcome_bytes_and_partial_compactions_and_warn_once()
    {
        var measurements = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == RetentionJob.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var outcome = tags.Length > 0 ? "/" + tags[0].Value : "";
            measurements.AddOrUpdate(instrument.Name + outcome, value, (_, old) => old + value);
        });
        listener.Start();
        var (store, job) = await CompactingAsync();
        await using var _ = store;
        await using var __ = job;
        for (var i = 0; i < 10; i++)
        {
            await AppendJsonAsync(store, "state/a", UpsertA(i));
        }
        await AppendJsonAsync(store, "state/a", """{"not":"state"}""");
        var before = (await store.GetMetadataAsync("state/a", Ct)).Info!.Tail.Position;

        await TickAsync(job);
        var snapshot = (await store.GetMetadataAsync("state/a", Ct)).Info!;
        for (var i = 0; i < 20; i++)
        {
            await AppendJsonAsync(store, "state/a", UpsertA(i));
        }
        await TickAsync(job);

        Assert.Equal(2, measurements["durable_streams.compaction.runs/compacted"]);
        Assert.Equal(2, measurements["durable_streams.compaction.partial"]);
        var final = (await store.GetMetadataAsync("state/a", Ct)).Info!;
        var firstSnapshot = snapshot.CompactedEnd.Position - snapshot.RetainedStart.Position;
        Assert.Equal(before + (final.CompactedEnd.Position - snapshot.RetainedStart.Position), measurements["durable_streams.compaction.bytes_before"]);
        Assert.Equal(firstSnapshot + (final.CompactedEnd.Position - final.RetainedStart.Position), measurements["durable_streams.compaction.bytes_after"]);
        var warning = Assert.Single(_logs.Entries, e => e.Level == LogLevel.Warning);
        Assert.Equal(LogEvents.CompactionPartial, warning.EventId);
        Assert.Equal(2, _logs.Entries.Count(e => e.EventId == LogEvents.CompactionCompleted));
    }

    [Fact]
    public async Task A_snapshot_too_large_is_counted_and_warned_about()
    {
        var measurements = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == RetentionJob.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            measurements.AddOrUpdate(instrument.Name + (tags.Length > 0 ? "/" + tags[0].Value : ""), value, (_, old) => old + value));
        listener.Start();
        var (store, job) = await CompactingAsync(new RetentionPolicy(null, null) { Compaction = SmallCompaction with { MaxSnapshotBytes = 100 } });
        await using var _ = store;
        await using var __ = job;
        for (var key = 0; key < 10; key++)
        {
            await AppendJsonAsync(store, "state/a", UpsertKey(key));
        }

        await TickAsync(job);

        Assert.Equal(1, measurements["durable_streams.compaction.runs/too_large"]);
        Assert.Equal(LogEvents.CompactionTooLarge, Assert.Single(_logs.Entries).EventId);
    }

    /// <summary>A store that records the retention calls it gets, and fails, holds or waits on request.</summary>
    private sealed class FakeStore(params string[] names) : IStreamRetention, IStreamCatalog
    {
        public const long Dropped = 100;
        public const long Freed = 64;
        private int _inside;
        private int _mostAtOnce;

        public ConcurrentQueue<(string Name, RetentionPolicy Policy)> Calls { get; } = new();
        public string? FailFor { get; init; }

        /// <summary>A stream whose start does not move but whose pass frees what an earlier pass left behind.</summary>
        public string? LeftoversFor { get; init; }
        public bool FailListing { get; set; }
        public TaskCompletionSource? Hold { get; init; }
        public bool WaitForCancellation { get; init; }
        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int MostAtOnce => Volatile.Read(ref _mostAtOnce);

        public IReadOnlyList<string> ListStreamNames() => FailListing ? throw new IOException("listing failed") : names;

        public async ValueTask<RetentionResult> ApplyRetentionAsync(string name, RetentionPolicy policy, CancellationToken cancellationToken = default)
        {
            Calls.Enqueue((name, policy));
            var inside = Interlocked.Increment(ref _inside);
            InterlockedMax(ref _mostAtOnce, inside);
            Entered.TrySetResult();
            try
            {
                if (Hold is not null)
                {
                    await Hold.Task.WaitAsync(cancellationToken);
                }
                if (WaitForCancellation)
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                return name == FailFor
                    ? throw new IOException("disk on fire")
                    : name == LeftoversFor
                    ? new RetentionResult(RetentionStatus.Unchanged, new StreamOffset(Dropped), 0, Freed)
                    : new RetentionResult(RetentionStatus.Trimmed, new StreamOffset(Dropped), Dropped, Freed);
            }
            finally
            {
                Interlocked.Decrement(ref _inside);
            }
        }

        private static void InterlockedMax(ref int target, int value)
        {
            var current = Volatile.Read(ref target);
            while (value > current && Interlocked.CompareExchange(ref target, value, current) is var seen && seen != current)
            {
                current = seen;
            }
        }
    }

    private sealed class StoreWithoutRetention : IStreamStore, IStreamCatalog
    {
        public IStreamChangeFeed Changes => throw new NotSupportedException();
        public IReadOnlyList<string> ListStreamNames() => [];
        public ValueTask<CreateStreamResult> CreateAsync(string name, CreateStreamRequest request, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<AppendStreamResult> AppendAsync(string name, AppendRequest request, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<ReadResult> ReadAsync(string name, ReadRequest request, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<MetadataResult> GetMetadataAsync(string name, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<DeleteResult> DeleteAsync(string name, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<WaitOutcome> WaitAsync(string name, StreamOffset offset, TimeSpan timeout, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class ListLoggerFactory : ILoggerFactory
    {
        public ConcurrentQueue<(LogLevel Level, int EventId, string Message, Exception? Exception)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new ListLogger(this);

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public void Dispose()
        {
        }

        private sealed class ListLogger(ListLoggerFactory owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue((logLevel, eventId.Id, formatter(state, exception), exception));
        }
    }
}
