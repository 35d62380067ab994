using DurableStreams.Core.Live;
using Xunit;

namespace DurableStreams.Core.Tests.Live;

public sealed class StreamSignalTests
{
    [Fact]
    public void A_new_signal_is_pending()
    {
        Assert.False(new StreamSignal().Current.IsCompleted);
    }

    [Fact]
    public void Publish_completes_the_task_taken_before_it_and_not_the_next_one()
    {
        var signal = new StreamSignal();
        var before = signal.Current;

        signal.Publish();
        var after = signal.Current;

        Assert.True(before.IsCompletedSuccessfully);
        Assert.NotSame(before, after);
        Assert.False(after.IsCompleted);
    }

    [Fact]
    public void Every_waiter_on_the_same_task_is_released_by_one_publish()
    {
        var signal = new StreamSignal();
        var taken = Enumerable.Range(0, 100).Select(_ => signal.Current).ToList();

        signal.Publish();

        Assert.All(taken, t => Assert.True(t.IsCompletedSuccessfully));
    }

    [Fact]
    public void Each_publish_releases_only_its_own_generation()
    {
        var signal = new StreamSignal();
        var first = signal.Current;
        signal.Publish();
        var second = signal.Current;
        signal.Publish();
        var third = signal.Current;

        Assert.True(first.IsCompleted);
        Assert.True(second.IsCompleted);
        Assert.False(third.IsCompleted);
    }

    [Fact]
    public void Waiters_that_ask_before_the_same_publish_share_one_task()
    {
        var signal = new StreamSignal();

        Assert.Same(signal.Current, signal.Current);
        signal.Publish();
        signal.Publish();
        Assert.Same(signal.Current, signal.Current);
    }

    [Fact]
    public void A_publish_with_no_waiter_leaves_the_next_waiter_pending()
    {
        var signal = new StreamSignal();

        signal.Publish();

        Assert.False(signal.Current.IsCompleted);
    }
}
