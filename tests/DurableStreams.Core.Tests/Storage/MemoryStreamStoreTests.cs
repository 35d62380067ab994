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
}
