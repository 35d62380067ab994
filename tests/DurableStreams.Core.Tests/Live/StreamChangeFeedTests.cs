using DurableStreams.Core.Live;
using DurableStreams.Protocol;
using Xunit;

namespace DurableStreams.Core.Tests.Live;

public sealed class StreamChangeFeedTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static StreamChanged Appended(string name, long tail) => new(StreamChangeKind.Appended, name, new StreamOffset(tail), DateTimeOffset.UnixEpoch);

    [Fact]
    public async Task Publishing_never_waits_for_a_listener_and_each_listener_hears_every_change_in_order()
    {
        await using var feed = new StreamChangeFeed();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = new List<long>();
        var fast = new List<long>();
        await using var slowListener = feed.Subscribe(async (change, _) =>
        {
            await gate.Task;
            slow.Add(change.Tail.Position);
        });
        await using var fastListener = feed.Subscribe((change, _) =>
        {
            fast.Add(change.Tail.Position);
            return ValueTask.CompletedTask;
        });

        for (var i = 1; i <= 100; i++)
        {
            feed.Publish(Appended("s", i));
        }
        var delivered = feed.WhenDeliveredAsync(Ct);

        Assert.False(delivered.IsCompleted); // The slow listener is still on its first change.
        gate.SetResult();
        await delivered.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), slow);
        Assert.Equal(slow, fast);
    }

    [Fact]
    public async Task A_throwing_listener_loses_only_that_change()
    {
        await using var feed = new StreamChangeFeed();
        var heard = new List<string>();
        await using var listener = feed.Subscribe((change, _) =>
        {
            if (change.Name == "bad")
            {
                throw new InvalidOperationException("listener broke");
            }
            heard.Add(change.Name);
            return ValueTask.CompletedTask;
        });

        feed.Publish(Appended("a", 1));
        feed.Publish(Appended("bad", 1));
        feed.Publish(Appended("b", 1));
        await feed.WhenDeliveredAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(["a", "b"], heard);
    }

    [Fact]
    public async Task A_listener_hears_only_the_changes_its_interest_accepts()
    {
        await using var feed = new StreamChangeFeed();
        var heard = new List<string>();
        await using var listener = feed.Subscribe((change, _) =>
        {
            heard.Add(change.Name);
            return ValueTask.CompletedTask;
        }, change => change.Name.StartsWith('a'));

        feed.Publish(Appended("a1", 1));
        feed.Publish(Appended("b1", 1));
        feed.Publish(Appended("a2", 1));
        await feed.WhenDeliveredAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(["a1", "a2"], heard);
    }

    [Fact]
    public async Task Without_listeners_publishing_is_a_no_op_and_delivery_is_immediate()
    {
        await using var feed = new StreamChangeFeed();

        feed.Publish(Appended("s", 1));

        Assert.False(feed.HasListeners);
        Assert.True(feed.WhenDeliveredAsync(Ct).IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Disposing_the_feed_ends_every_subscription_and_completes_waiting_deliveries()
    {
        var feed = new StreamChangeFeed();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var listener = feed.Subscribe(async (change, token) =>
        {
            entered.TrySetResult();
            await Task.Delay(Timeout.Infinite, token);
        });
        feed.Publish(Appended("s", 1));
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        feed.Publish(Appended("s", 2));
        var delivered = feed.WhenDeliveredAsync(Ct);

        await feed.DisposeAsync();

        await delivered.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.False(feed.HasListeners);
    }
}
