using System.Globalization;
using System.Text;
using DurableStreams.Core;
using DurableStreams.Core.Compaction;
using DurableStreams.Core.Retention;
using DurableStreams.Storage.Files;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Idle streams leave memory (issue 20, a million streams): past <see cref="FileStreamStoreOptions.MaxLoadedStreams"/>
/// the sweep unloads the least recently used quiescent streams, and the next lookup loads them from LMDB as after a
/// restart. The sweep is triggered directly (<see cref="FileStreamStore.UnloadIdleAsync"/>), never waited for.
/// </summary>
public sealed class UnloadTests : FileStoreTestBase
{
    private const int Cap = 10;

    protected override FileStreamStoreOptions StoreOptions => new()
    {
        DataDirectory = DataDirectory,
        TimeProvider = Time,
        Durability = Durability,
        SweepInterval = TimeSpan.FromSeconds(2),
        MaxLoadedStreams = Cap,
    };

    private static string NameOf(int i) => "s/" + i.ToString("D4", CultureInfo.InvariantCulture);

    private async Task UnloadAsync()
    {
        await Store.UnloadIdleAsync();
        Assert.True(Store.LoadedCount <= Cap, $"{Store.LoadedCount} streams loaded after the sweep (cap {Cap})");
    }

    [Fact]
    public async Task Past_the_cap_the_sweep_unloads_idle_streams_and_they_reload_with_every_byte_and_producer()
    {
        const int streams = 200;
        var expected = new Dictionary<string, StringBuilder>();
        for (var i = 0; i < streams; i++)
        {
            var name = NameOf(i);
            await CreatedAsync(name, body: name + ":");
            Assert.Equal(AppendStatus.Appended, (await AppendAsync(name, "p0;", producer: Producer(0, 0))).Status);
            expected[name] = new StringBuilder(name + ":p0;");
        }
        Assert.Equal(streams, Store.LoadedCount);

        await UnloadAsync();
        Assert.True(Store.UnloadedTotal >= streams - Cap);

        // Appends (each stream's own producer, in order) and reads of every stream, concurrently and in random order,
        // with the sweep run between rounds while they are in flight.
        var random = new Random(20);
        for (var round = 1; round <= 3; round++)
        {
            var order = Enumerable.Range(0, streams).OrderBy(_ => random.Next()).ToArray();
            var r = round;
            var work = order.Select(async i =>
            {
                var name = NameOf(i);
                var appended = await AppendAsync(name, $"p{r};", producer: Producer(0, r));
                Assert.Equal(AppendStatus.Appended, appended.Status);
                var read = await ReadFromStartAsync(name);
                Assert.Equal(ReadStatus.Ok, read.Status);
                Assert.StartsWith(name + ":p0;", Encoding.UTF8.GetString(BytesOf(read)), StringComparison.Ordinal);
            }).ToList();
            work.Add(Store.UnloadIdleAsync());
            await Task.WhenAll(work).WaitAsync(HangGuard, Ct);
            foreach (var i in order)
            {
                expected[NameOf(i)].Append(CultureInfo.InvariantCulture, $"p{r};");
            }
            await UnloadAsync();
        }

        // A producer's retry after its stream was unloaded is still a duplicate: its state was reloaded.
        foreach (var (name, text) in expected)
        {
            Assert.Equal(AppendStatus.Duplicate, (await AppendAsync(name, "p3;", producer: Producer(0, 3))).Status);
            Assert.Equal(text.ToString(), await ReadTextAsync(name));
        }
        await UnloadAsync();

        await RestartAsync();
        foreach (var (name, text) in expected)
        {
            Assert.Equal(text.ToString(), await ReadTextAsync(name));
            Assert.Equal(AppendStatus.Duplicate, (await AppendAsync(name, "p2;", producer: Producer(0, 2))).Status);
        }
    }

    [Fact]
    public async Task An_append_that_looked_the_stream_up_before_it_was_unloaded_goes_to_the_reloaded_stream()
    {
        for (var i = 0; i < Cap + 5; i++)
        {
            await CreatedAsync(NameOf(i), body: "a");
        }
        var victim = NameOf(0);
        var fired = 0;
        Store.Faults.AfterLookup = name =>
        {
            if (name == victim && Interlocked.Exchange(ref fired, 1) == 0)
            {
                // Between the append's lookup and its use of the entry: this stream (the least recently used) goes.
                Store.UnloadIdleAsync().GetAwaiter().GetResult();
            }
        };
        Assert.Equal(AppendStatus.Appended, (await AppendAsync(victim, "b")).Status);
        Store.Faults.AfterLookup = null;
        Assert.Equal(1, fired);
        Assert.Equal("ab", await ReadTextAsync(victim));

        // What the append committed is the reloaded entry's: after another unload and a restart it is all there.
        await UnloadAsync();
        Assert.Equal("ab", await ReadTextAsync(victim));
        Assert.Equal(AppendStatus.Appended, (await AppendAsync(victim, "c")).Status);
        await RestartAsync();
        Assert.Equal("abc", await ReadTextAsync(victim));
    }

    /// <summary>
    /// Runs <paramref name="operation"/> on <paramref name="victim"/>, unloading the stream between each of the
    /// operation's lookups (the first ten) and its use of the entry, and loading the name again (a concurrent reader) before the
    /// operation goes on.
    /// </summary>
    private async Task<T> RacingUnloadAsync<T>(string victim, Func<Task<T>> operation)
    {
        var fired = 0;
        var inside = false;
        Store.Faults.AfterLookup = name =>
        {
            // At most ten times: each retry of the operation is a lookup again.
            if (name == victim && !inside && fired < 10)
            {
                inside = true;
                try
                {
                    Assert.True(Store.UnloadAsync(victim).GetAwaiter().GetResult());
                    Assert.Equal(ReadStatus.Ok, Store.GetMetadataAsync(victim, Ct).AsTask().GetAwaiter().GetResult().Status);
                    fired++;
                }
                finally
                {
                    inside = false;
                }
            }
        };
        try
        {
            var result = await operation();
            Assert.True(fired > 0);
            return result;
        }
        finally
        {
            Store.Faults.AfterLookup = null;
        }
    }

    [Fact]
    public async Task A_direct_read_that_looked_the_stream_up_before_it_was_unloaded_reads_the_reloaded_stream()
    {
        await CreatedAsync("victim", body: "hello");
        var fired = 0;
        Store.Faults.AfterLookup = name =>
        {
            if (name == "victim" && Interlocked.Exchange(ref fired, 1) == 0)
            {
                // Between the read's lookup and its use of the entry: the entry it holds is unloaded (its file
                // closed, its tail frozen at 5) and the name's reloaded entry takes an append.
                Assert.True(Store.UnloadAsync("victim").GetAwaiter().GetResult());
                Assert.Equal(AppendStatus.Appended, AppendAsync("victim", " world").AsTask().GetAwaiter().GetResult().Status);
            }
        };
        var destination = new byte[11];
        var status = await Store.ReadIntoAsync("victim", 0, destination, Ct);
        Store.Faults.AfterLookup = null;
        Assert.Equal(1, fired);
        Assert.Equal(ReadStatus.Ok, status);
        Assert.Equal("hello world", Encoding.UTF8.GetString(destination));
        Assert.Equal(1, Store.LoadedCount);
    }

    [Fact]
    public async Task A_delete_that_looked_the_stream_up_before_it_was_unloaded_deletes_the_reloaded_stream()
    {
        await CreatedAsync("victim", body: "a");
        Time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < Cap + 5; i++)
        {
            await CreatedAsync(NameOf(i), body: "a");
        }
        Assert.Equal(DeleteStatus.Deleted, await RacingUnloadAsync("victim", () => DeleteAsync("victim")));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("victim"));
        await CreatedAsync("victim", body: "new");
        await RestartAsync();
        Assert.Equal("new", await ReadTextAsync("victim"));
    }

    [Fact]
    public async Task Retention_and_compaction_that_looked_the_stream_up_before_it_was_unloaded_apply_to_the_reloaded_stream()
    {
        await CreatedAsync("sized", body: new string('a', 10_000));
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("sized", new string('b', 10_000))).Status);
        await CreatedAsync("state", Json);
        for (var v = 0; v < 20; v++)
        {
            Assert.Equal(AppendStatus.Appended, (await AppendAsync("state", $$$"""[{"type":"row","key":"k","value":{"v":{{{v}}}},"headers":{"operation":"upsert"}}]""", Json)).Status);
        }
        Time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < Cap + 5; i++)
        {
            await CreatedAsync(NameOf(i), body: "a");
        }
        var trimmed = await RacingUnloadAsync("sized", async () => await Store.ApplyRetentionAsync("sized", new RetentionPolicy(null, 10_000), Ct));
        Assert.Equal(RetentionStatus.Trimmed, trimmed.Status);
        Assert.Equal(10_000, (await InfoAsync("sized")).RetainedStart.Position);
        Assert.Equal(ReadStatus.BeforeRetainedStart, (await ReadAsync("sized", 0)).Status);

        var compacted = await RacingUnloadAsync("state", async () => await StateCompactor.CompactAsync(Store, "state", CompactionPolicy.State, force: true, Ct));
        Assert.Equal(CompactionStatus.Compacted, compacted.Status);
        var compactedEnd = (await InfoAsync("state")).CompactedEnd.Position;
        Assert.True(compactedEnd > 0);
        await RestartAsync();
        Assert.Equal(10_000, (await InfoAsync("sized")).RetainedStart.Position);
        Assert.Equal(compactedEnd, (await InfoAsync("state")).CompactedEnd.Position);
    }

    [Fact]
    public async Task A_waiting_reader_keeps_its_stream_loaded_and_is_woken_by_the_next_append()
    {
        for (var i = 0; i < Cap * 3; i++)
        {
            await CreatedAsync(NameOf(i), body: "a");
        }
        var watched = NameOf(0);
        var wait = Store.WaitAsync(watched, new Protocol.StreamOffset(1), TimeSpan.FromMinutes(1), Ct).AsTask();
        Assert.False(wait.IsCompleted);

        await UnloadAsync();
        Assert.True(Store.UnloadedTotal > 0);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync(watched, "b")).Status);
        Assert.Equal(WaitOutcome.Changed, await Promptly(wait));

        // Once nobody waits, it may go like any other idle stream.
        for (var i = 0; i < Cap * 3; i++)
        {
            await ReadTextAsync(NameOf(i));
        }
        await UnloadAsync();
        Assert.Equal("ab", await ReadTextAsync(watched));
    }

    [Fact]
    public async Task Deleting_and_recreating_an_unloaded_name_leaves_only_the_new_stream()
    {
        for (var i = 0; i < Cap * 2; i++)
        {
            await CreatedAsync(NameOf(i), body: "old" + i);
        }
        await UnloadAsync();
        for (var i = 0; i < Cap * 2; i += 2)
        {
            Assert.Equal(DeleteStatus.Deleted, await DeleteAsync(NameOf(i)));
            await CreatedAsync(NameOf(i), body: "new" + i);
        }
        await UnloadAsync();
        for (var i = 0; i < Cap * 2; i++)
        {
            Assert.Equal((i % 2 == 0 ? "new" : "old") + i, await ReadTextAsync(NameOf(i)));
        }
        Assert.Equal(Cap * 2, Store.Count);
        await UnloadAsync();
        await RestartAsync();
        for (var i = 0; i < Cap * 2; i++)
        {
            Assert.Equal((i % 2 == 0 ? "new" : "old") + i, await ReadTextAsync(NameOf(i)));
        }
        Assert.Equal(Cap * 2, Store.Count);
    }

    [Fact]
    public async Task A_fork_of_an_unloaded_source_reads_through_it_and_the_source_stays_loaded_for_it()
    {
        await CreatedAsync("src", body: "base");
        Time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < Cap * 2; i++)
        {
            await CreatedAsync(NameOf(i), body: "x");
        }
        await UnloadAsync();
        Assert.False(Store.IsLoaded("src"));
        await CreatedAsync("fork", contentType: null, fork: ForkOf("src"));
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("fork", "+own")).Status);
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("src", "+src")).Status);
        for (var i = 0; i < Cap * 2; i++)
        {
            await ReadTextAsync(NameOf(i));
        }
        await UnloadAsync();
        Assert.Equal("base+own", await ReadTextAsync("fork"));
        Assert.Equal("base+src", await ReadTextAsync("src"));
        // The source goes soft (its fork reads through it), and both survive unloads and a restart.
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("src"));
        await UnloadAsync();
        Assert.Equal("base+own", await ReadTextAsync("fork"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("src"));
        await RestartAsync();
        Assert.Equal("base+own", await ReadTextAsync("fork"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("src"));
    }

    [Fact]
    public async Task Retention_and_compaction_of_unloaded_streams_apply_to_the_reloaded_ones()
    {
        await CreatedAsync("sized", body: new string('a', 10_000));
        Assert.Equal(AppendStatus.Appended, (await AppendAsync("sized", new string('b', 10_000))).Status);
        await CreatedAsync("state", Json);
        for (var v = 0; v < 20; v++)
        {
            var batch = string.Join(",", Enumerable.Range(0, 5).Select(k => $$$"""{"type":"row","key":"k{{{k}}}","value":{"v":{{{v}}}},"headers":{"operation":"upsert"}}"""));
            Assert.Equal(AppendStatus.Appended, (await AppendAsync("state", "[" + batch + "]", Json)).Status);
        }
        // Least recently used first: these two.
        Time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < Cap * 2; i++)
        {
            await CreatedAsync(NameOf(i), body: "x");
        }
        await UnloadAsync();
        Assert.False(Store.IsLoaded("sized") || Store.IsLoaded("state"));

        var trimmed = await Store.ApplyRetentionAsync("sized", new RetentionPolicy(null, 10_000), Ct);
        Assert.Equal(RetentionStatus.Trimmed, trimmed.Status);
        var compacted = await StateCompactor.CompactAsync(Store, "state", CompactionPolicy.State, force: true, Ct);
        Assert.Equal(CompactionStatus.Compacted, compacted.Status);
        var start = (await InfoAsync("sized")).RetainedStart.Position;
        var compactedEnd = (await InfoAsync("state")).CompactedEnd.Position;
        Assert.True(start >= 10_000);
        Assert.True(compactedEnd > 0);

        for (var i = 0; i < Cap * 2; i++)
        {
            await ReadTextAsync(NameOf(i));
        }
        await UnloadAsync();
        Assert.Equal(start, (await InfoAsync("sized")).RetainedStart.Position);
        Assert.Equal(ReadStatus.BeforeRetainedStart, (await ReadAsync("sized", 0)).Status);
        Assert.Equal(new string('b', 10_000), await ReadTextAsync("sized", start));
        Assert.Equal(compactedEnd, (await InfoAsync("state")).CompactedEnd.Position);
        await RestartAsync();
        Assert.Equal(start, (await InfoAsync("sized")).RetainedStart.Position);
        Assert.Equal(compactedEnd, (await InfoAsync("state")).CompactedEnd.Position);
    }

    [Fact]
    public async Task An_unloaded_stream_with_a_ttl_is_still_expired_by_the_sweep()
    {
        await CreatedAsync("ttl", body: "a", ttl: 60);
        Time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < Cap * 2; i++)
        {
            await CreatedAsync(NameOf(i), body: "x");
        }
        // Access times are persisted on their own timer; the TTL stream can only go once its refresh is durable.
        Time.Advance(TimeSpan.FromSeconds(10));
        await UnloadAsync();
        Assert.False(Store.IsLoaded("ttl"));
        Assert.Contains("ttl", Store.ListStreamNames());

        Time.Advance(TimeSpan.FromSeconds(61));
        Assert.DoesNotContain("ttl", Store.ListStreamNames());
    }
}
