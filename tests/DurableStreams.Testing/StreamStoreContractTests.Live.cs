using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(30);

    private Task<WaitOutcome> WaitAsync(string name, long position, CancellationToken cancellationToken = default) =>
        Store.WaitAsync(name, At(position), WaitTimeout, cancellationToken == default ? Ct : cancellationToken).AsTask();

    [Fact]
    public async Task Wait_returns_Changed_at_once_when_data_is_already_past_the_offset()
    {
        await CreatedAsync("s", body: "abc");

        Assert.Equal(WaitOutcome.Changed, await Promptly(WaitAsync("s", 2)));
    }

    [Fact]
    public async Task Wait_returns_Changed_at_once_on_a_closed_stream()
    {
        await CreatedAsync("s", body: "abc", closed: true);

        Assert.Equal(WaitOutcome.Changed, await Promptly(WaitAsync("s", 3)));
    }

    [Fact]
    public async Task Wait_wakes_on_append()
    {
        await CreatedAsync("s", body: "abc");
        var wait = WaitAsync("s", 3);
        Assert.False(wait.IsCompleted);

        await AppendedAsync("s", "d");

        Assert.Equal(WaitOutcome.Changed, await Promptly(wait));
    }

    [Fact]
    public async Task Wait_wakes_every_waiter_on_one_append()
    {
        await CreatedAsync("s");
        var waits = Enumerable.Range(0, 100).Select(_ => WaitAsync("s", 0)).ToList();
        Assert.DoesNotContain(waits, w => w.IsCompleted);

        await AppendedAsync("s", "x");

        Assert.All(await Promptly(Task.WhenAll(waits)), outcome => Assert.Equal(WaitOutcome.Changed, outcome));
    }

    [Fact]
    public async Task Wait_wakes_on_close()
    {
        await CreatedAsync("s", body: "abc");
        var wait = WaitAsync("s", 3);
        Assert.False(wait.IsCompleted);

        await AppendedAsync("s", null, close: true);

        Assert.Equal(WaitOutcome.Changed, await Promptly(wait));
    }

    [Fact]
    public async Task Wait_is_not_woken_by_rejected_appends()
    {
        await CreatedAsync("s", body: "abc");
        var wait = WaitAsync("s", 3);

        await AppendAsync("s", "x", contentType: Json);
        await AppendAsync("s", null);

        Assert.False(wait.IsCompleted);
        Time.Advance(WaitTimeout);
        Assert.Equal(WaitOutcome.TimedOut, await Promptly(wait));
    }

    [Fact]
    public async Task Wait_times_out_when_the_clock_passes_the_timeout()
    {
        await CreatedAsync("s", body: "abc");
        var wait = WaitAsync("s", 3);

        Time.Advance(WaitTimeout - TimeSpan.FromMilliseconds(1));
        Assert.False(wait.IsCompleted);
        Time.Advance(TimeSpan.FromMilliseconds(1));

        Assert.Equal(WaitOutcome.TimedOut, await Promptly(wait));
    }

    [Fact]
    public async Task Wait_can_be_cancelled()
    {
        await CreatedAsync("s");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var wait = WaitAsync("s", 0, cts.Token);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Promptly(wait));
    }

    [Fact]
    public async Task Wait_with_a_stop_token_ends_on_either_token_and_still_wakes_on_data()
    {
        await CreatedAsync("s");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var request = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        using var otherStop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var stopped = Store.WaitAsync("s", At(0), WaitTimeout, stop.Token, Ct).AsTask();
        var aborted = Store.WaitAsync("s", At(0), WaitTimeout, otherStop.Token, request.Token).AsTask();
        var woken = Store.WaitAsync("s", At(0), WaitTimeout, otherStop.Token, Ct).AsTask();

        await stop.CancelAsync();
        await request.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Promptly(stopped));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Promptly(aborted));
        Assert.False(woken.IsCompleted);
        await AppendAsync("s", "abc");

        Assert.Equal(WaitOutcome.Changed, await Promptly(woken));
    }

    [Fact]
    public async Task Wait_on_a_missing_stream_is_Gone()
    {
        Assert.Equal(WaitOutcome.Gone, await Promptly(WaitAsync("missing", 0)));
    }

    [Fact]
    public async Task Wait_on_a_deleted_or_soft_deleted_stream_is_Gone()
    {
        await CreatedAsync("deleted");
        await CreatedAsync("soft");
        await CreatedAsync("fork", fork: ForkOf("soft"));
        await DeleteAsync("deleted");
        await DeleteAsync("soft");

        Assert.Equal(WaitOutcome.Gone, await Promptly(WaitAsync("deleted", 0)));
        Assert.Equal(WaitOutcome.Gone, await Promptly(WaitAsync("soft", 0)));
    }

    [Fact]
    public async Task Wait_ends_with_Gone_when_the_stream_is_deleted_meanwhile()
    {
        await CreatedAsync("s");
        var wait = WaitAsync("s", 0);
        Assert.False(wait.IsCompleted);

        await DeleteAsync("s");

        Assert.Equal(WaitOutcome.Gone, await Promptly(wait));
    }

    [Fact]
    public async Task Fork_waiters_are_not_woken_by_source_appends()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("fork", fork: ForkOf("src"));
        var wait = WaitAsync("fork", 3);

        await AppendedAsync("src", "source data");
        Assert.False(wait.IsCompleted);
        Time.Advance(WaitTimeout);

        Assert.Equal(WaitOutcome.TimedOut, await Promptly(wait));
    }

    [Fact]
    public async Task Fork_waiters_wake_on_fork_appends()
    {
        await CreatedAsync("src", body: "abc");
        await CreatedAsync("fork", fork: ForkOf("src"));
        var wait = WaitAsync("fork", 3);

        await AppendedAsync("fork", "d");

        Assert.Equal(WaitOutcome.Changed, await Promptly(wait));
        Assert.Equal(WaitOutcome.Changed, await Promptly(WaitAsync("fork", 1)));
    }

    [Fact]
    public async Task Parallel_appends_lose_nothing_and_get_unique_increasing_offsets()
    {
        const int writers = 16;
        const int appendsPerWriter = 200;
        await CreatedAsync("s", Binary);

        var offsets = await Task.WhenAll(Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            var body = Enumerable.Repeat((byte)('A' + writer), writer % 5 + 1).ToArray();
            var nextOffsets = new List<long>(appendsPerWriter);
            for (var i = 0; i < appendsPerWriter; i++)
            {
                var result = await Store.AppendAsync("s", new AppendRequest { ContentType = Binary, Body = body }, Ct);
                Assert.Equal(AppendStatus.Appended, result.Status);
                nextOffsets.Add(result.NextOffset.Position);
            }
            return (Body: body, NextOffsets: nextOffsets);
        }, Ct)));

        var expectedTail = offsets.Sum(o => (long)o.Body.Length * appendsPerWriter);
        Assert.Equal(At(expectedTail), (await InfoAsync("s")).Tail);
        var all = offsets.SelectMany(o => o.NextOffsets).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        var data = BytesOf(await ReadFromStartAsync("s"));
        Assert.Equal(expectedTail, data.Length);
        foreach (var (body, nextOffsets) in offsets)
        {
            Assert.True(nextOffsets.Zip(nextOffsets.Skip(1)).All(pair => pair.First < pair.Second), "offsets must increase per writer");
            foreach (var next in nextOffsets)
            {
                // Each append's bytes sit contiguously just before the offset it returned.
                Assert.Equal(body, data[(int)(next - body.Length)..(int)next]);
            }
        }
    }

    [Fact]
    public async Task Parallel_producer_retries_commit_each_sequence_once()
    {
        await CreatedAsync("s");

        var results = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Task.Run(
            async () => await AppendAsync("s", "x", producer: Producer(0, 0)), Ct)));

        Assert.Single(results, r => r.Status == AppendStatus.Appended);
        Assert.All(results, r => Assert.Contains(r.Status, new[] { AppendStatus.Appended, AppendStatus.Duplicate }));
        Assert.Equal("x", await ReadTextAsync("s"));
    }

    [Fact]
    public async Task State_survives_a_restart()
    {
        await CreatedAsync("s", body: "abc", ttl: 3600);
        await AppendAsync("s", "de", streamSeq: "5", producer: Producer(1, 0));
        await CreatedAsync("closed", Json, body: """[{"a":1},{"b":2}]""", closed: true);
        await CreatedAsync("fork", fork: ForkOf("s", 3, subOffset: 1));
        await AppendedAsync("fork", "F");
        await CreatedAsync("soft", body: "soft");
        await CreatedAsync("soft-fork", fork: ForkOf("soft"));
        await DeleteAsync("soft");
        StoredStreamInfo[] before = [await InfoAsync("s"), await InfoAsync("closed"), await InfoAsync("fork")];

        await RestartAsync();

        StoredStreamInfo[] after = [await InfoAsync("s"), await InfoAsync("closed"), await InfoAsync("fork")];
        Assert.Equal(before, after);
        Assert.Equal("abcde", await ReadTextAsync("s"));
        Assert.Equal(AppendStatus.Duplicate, (await AppendAsync("s", "de", producer: Producer(1, 0))).Status);
        Assert.Equal(AppendStatus.StaleEpoch, (await AppendAsync("s", "x", producer: Producer(0, 0))).Status);
        Assert.Equal(AppendStatus.StreamSeqConflict, (await AppendAsync("s", "x", streamSeq: "4")).Status);
        Assert.Equal("""[{"a":1},{"b":2}]""", await ReadJsonAsync("closed"));
        Assert.True((await ReadFromStartAsync("closed")).Closed);
        Assert.Equal("abcdF", await ReadTextAsync("fork"));
        Assert.Equal(ReadStatus.Gone, await MetadataStatusAsync("soft"));
        Assert.Equal("soft", await ReadTextAsync("soft-fork"));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("soft-fork"));
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("soft"));
    }

    [Fact]
    public async Task Appends_after_a_restart_continue_at_the_tail()
    {
        await CreatedAsync("s", body: "abc");

        await RestartAsync();

        Assert.Equal(At(5), (await AppendedAsync("s", "de")).NextOffset);
        Assert.Equal("abcde", await ReadTextAsync("s"));
    }
}
