using System.Text;
using DurableStreams.Core;
using Xunit;

namespace DurableStreams.Testing;

public abstract partial class StreamStoreContractTests
{
    /// <summary>
    /// How deep <see cref="A_fork_chain_ten_thousand_deep_is_read_written_and_deleted_without_recursion"/> builds its
    /// chain; a store whose creates are slow at that depth may use less (and say so).
    /// </summary>
    protected virtual int DeepForkChainDepth => 10_000;

    [Fact]
    public async Task A_fork_chain_ten_thousand_deep_is_read_written_and_deleted_without_recursion()
    {
        var depth = DeepForkChainDepth;
        var dataEvery = Math.Max(1, depth / 100);
        await UseLimitsAsync(Limits with { MaxForkDepth = depth }, withoutSyncs: true);
        await CreatedAsync("c0", Json, body: "[0]");
        var expected = new List<int> { 0 };
        for (var i = 1; i <= depth; i++)
        {
            await CreatedAsync($"c{i}", contentType: null, fork: ForkOf($"c{i - 1}"));
            if (i % dataEvery == 0)
            {
                await AppendedAsync($"c{i}", $"[{i}]", Json);
                expected.Add(i);
            }
        }
        var leaf = $"c{depth}";
        var all = "[" + string.Join(",", expected) + "]";
        // On a small stack, so any walk of the chain that recurses overflows it instead of passing by luck.
        await OnSmallStackAsync(() => UseDeepChainAsync(depth, leaf, expected, all));
    }

    private async Task UseDeepChainAsync(int depth, string leaf, List<int> expected, string all)
    {

        await AssertDeepChainReadsAsync(leaf, expected, all);

        // The deepest stream can be forked no further; one level up, a fork resolves boundaries through the chain.
        var tooDeep = await CreateAsync("too-deep", contentType: null, fork: ForkOf(leaf));
        Assert.Equal(CreateStatus.ForkTooDeep, tooDeep.Status);
        var secondStart = "0,".Length;
        var branch = await CreatedAsync("branch", contentType: null, fork: ForkOf($"c{depth - 1}", secondStart, subOffset: 1));
        Assert.Equal(At(secondStart + $"{expected[1]},".Length), branch.Tail);
        Assert.Equal(ReadStatus.OffsetUnaligned, (await ReadAsync(leaf, secondStart + 1)).Status);

        // The first (cold) read after a restart walks the chain again.
        await RestartAsync();
        await AssertDeepChainReadsAsync(leaf, expected, all);

        // Deleting every source only soft-deletes it; deleting the leaf then removes the whole chain.
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync("branch"));
        for (var i = 0; i < depth; i++)
        {
            Assert.Equal(DeleteStatus.Deleted, await DeleteAsync($"c{i}"));
        }
        Assert.Equal(1, await CountLiveStreamsAsync(Store));
        Assert.Equal(DeleteStatus.Deleted, await DeleteAsync(leaf));
        Assert.Equal(0, await CountLiveStreamsAsync(Store));
        await CreatedAsync("c0", TextPlain);
    }

    /// <summary>Runs <paramref name="work"/> on a thread with a 256 KiB stack (its awaits continue on the thread pool).</summary>
    private static Task OnSmallStackAsync(Func<Task> work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                work().GetAwaiter().GetResult();
                done.SetResult();
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        }, maxStackSize: 256 * 1024);
        thread.Start();
        return done.Task;
    }

    private async Task AssertDeepChainReadsAsync(string leaf, List<int> expected, string all)
    {
        using (var read = await ReadFromStartAsync(leaf))
        {
            Assert.Equal(ReadStatus.Ok, read.Status);
            Assert.True(read.UpToDate);
            Assert.Equal(all, JsonOf(read));
        }

        // Message by message: each read stops inside the chain and the next starts there.
        var values = new List<string>();
        var position = 0L;
        while (true)
        {
            using var read = await ReadAsync(leaf, position, maxBytes: 1);
            Assert.Equal(ReadStatus.Ok, read.Status);
            values.AddRange(Encoding.UTF8.GetString(BytesOf(read)).Split(',', StringSplitOptions.RemoveEmptyEntries));
            position = read.Next.Position;
            if (read.UpToDate)
            {
                break;
            }
        }
        Assert.Equal(expected.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)), values);

        var stored = Encoding.UTF8.GetBytes(string.Concat(expected.Select(v => $"{v},")));
        var direct = new byte[stored.Length];
        Assert.Equal(ReadStatus.Ok, await Store.ReadIntoAsync(leaf, 0, direct, Ct));
        Assert.Equal(stored, direct);
    }

    [Fact]
    public async Task A_fork_deeper_than_the_limit_is_refused_with_the_limit()
    {
        await UseLimitsAsync(Limits with { MaxForkDepth = 3 });
        await CreatedAsync("d0", body: "a");
        for (var i = 1; i <= 3; i++)
        {
            await CreatedAsync($"d{i}", fork: ForkOf($"d{i - 1}"));
        }

        var refused = await CreateAsync("d4", fork: ForkOf("d3"));

        Assert.Equal(CreateStatus.ForkTooDeep, refused.Status);
        Assert.Equal(3, refused.Limit);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("d4"));
        // A fork higher up the chain is within the limit.
        await CreatedAsync("d3b", fork: ForkOf("d2"));
    }

    [Fact]
    public void The_default_fork_depth_limit_is_one_hundred() => Assert.Equal(100, StoreLimits.Default.MaxForkDepth);

    [Fact]
    public async Task An_append_of_more_json_messages_than_the_limit_stores_nothing()
    {
        await UseLimitsAsync(Limits with { MaxMessagesPerAppend = 3 });
        await CreatedAsync("j", Json);
        await AppendedAsync("j", "[1,2,3]", Json);

        var refused = await AppendAsync("j", "[4,5,6,7]", Json);

        Assert.Equal(AppendStatus.TooManyMessages, refused.Status);
        Assert.Equal(3, refused.Limit);
        Assert.Equal(At("1,2,3,".Length), (await InfoAsync("j")).Tail);
        using var read = await ReadFromStartAsync("j");
        Assert.Equal("[1,2,3]", JsonOf(read));
        // A single value and a binary body are one message each.
        await AppendedAsync("j", "{\"a\":[1,2,3,4,5]}", Json);
        await CreatedAsync("b", Binary);
        await AppendedAsync("b", "[1,2,3,4,5]", Binary);
    }

    [Fact]
    public async Task A_create_with_more_json_messages_than_the_limit_is_refused()
    {
        await UseLimitsAsync(Limits with { MaxMessagesPerAppend = 2 });

        var refused = await CreateAsync("j", Json, body: "[1,2,3]");

        Assert.Equal(CreateStatus.TooManyMessages, refused.Status);
        Assert.Equal(2, refused.Limit);
        Assert.Equal(ReadStatus.NotFound, await MetadataStatusAsync("j"));
        await CreatedAsync("j", Json, body: "[1,2]");
    }

    [Fact]
    public void The_default_message_limit_is_one_hundred_thousand() => Assert.Equal(100_000, StoreLimits.Default.MaxMessagesPerAppend);
}
