using DurableStreams.Core.Live;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Core.Tests.Live;

/// <summary>The memory and file stores' reusable live wait: signal, deadline and cancellation complete one object.</summary>
public sealed class SignalWaitTests : IDisposable
{
    private static readonly Func<object, bool> NeverGone = static _ => false;

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly DeadlineScheduler _scheduler;
    private readonly StreamSignal _signal = new();

    public SignalWaitTests() => _scheduler = new DeadlineScheduler(_time);

    public void Dispose() => _scheduler.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private (SignalWait Wait, Task<WaitOutcome> Task) Start(
        TimeSpan timeout, Func<object, bool>? isGone, CancellationToken cancellationToken, CancellationToken stopToken = default)
    {
        var wait = _scheduler.RentWait(isGone ?? NeverGone, this);
        _signal.Add(wait);
        return (wait, wait.Arm(timeout, stopToken, cancellationToken).AsTask());
    }

    private (SignalWait Wait, Task<WaitOutcome> Task) Start(TimeSpan timeout) => Start(timeout, null, Ct);

    private static Task<WaitOutcome> Within(Task<WaitOutcome> task) => task.WaitAsync(TimeSpan.FromSeconds(30), Ct);

    [Fact]
    public async Task A_publish_completes_the_wait_as_changed_and_unlinks_it()
    {
        var (_, task) = Start(TimeSpan.FromMinutes(1));
        Assert.False(task.IsCompleted);
        Assert.Equal(1, _signal.WaitCount);

        _signal.Publish();

        Assert.Equal(WaitOutcome.Changed, await Within(task));
        Assert.Equal(0, _signal.WaitCount);
    }

    [Fact]
    public async Task A_publish_for_a_stream_that_is_gone_completes_the_wait_as_gone()
    {
        var (_, task) = Start(TimeSpan.FromMinutes(1), static _ => true, Ct);

        _signal.Publish();

        Assert.Equal(WaitOutcome.Gone, await Within(task));
    }

    [Fact]
    public async Task The_deadline_completes_the_wait_as_timed_out_and_unlinks_it()
    {
        var (_, task) = Start(TimeSpan.FromSeconds(5));

        _time.Advance(TimeSpan.FromSeconds(5) - TimeSpan.FromTicks(1));
        Assert.False(task.IsCompleted);
        _time.Advance(TimeSpan.FromTicks(1));

        Assert.Equal(WaitOutcome.TimedOut, await Within(task));
        Assert.Equal(0, _signal.WaitCount);
        Assert.Equal(0, _scheduler.PendingCount);
    }

    [Fact]
    public async Task A_zero_timeout_completes_at_once_as_timed_out()
    {
        var (_, task) = Start(TimeSpan.Zero);

        Assert.Equal(WaitOutcome.TimedOut, await Within(task));
        Assert.Equal(0, _signal.WaitCount);
    }

    [Fact]
    public async Task Cancellation_completes_the_wait_with_the_token_and_unlinks_it()
    {
        using var cts = new CancellationTokenSource();
        var (_, task) = Start(TimeSpan.FromMinutes(1), null, cts.Token);

        await cts.CancelAsync();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(task));
        Assert.Equal(cts.Token, thrown.CancellationToken);
        Assert.Equal(0, _signal.WaitCount);
    }

    [Fact]
    public async Task The_stop_token_completes_the_wait_with_that_token_and_unlinks_it()
    {
        using var request = new CancellationTokenSource();
        using var stop = new CancellationTokenSource();
        var (_, task) = Start(TimeSpan.FromMinutes(1), null, request.Token, stop.Token);

        await stop.CancelAsync();

        var thrown = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Within(task));
        Assert.Equal(stop.Token, thrown.CancellationToken);
        Assert.Equal(0, _signal.WaitCount);
    }

    [Fact]
    public async Task A_wait_with_two_tokens_is_reused_with_neither_registration_left_behind()
    {
        using var request = new CancellationTokenSource();
        using var stop = new CancellationTokenSource();
        var (first, firstTask) = Start(TimeSpan.FromMinutes(1), null, request.Token, stop.Token);
        _signal.Publish();
        Assert.Equal(WaitOutcome.Changed, await Within(firstTask));

        var (second, secondTask) = Start(TimeSpan.FromMinutes(1));
        Assert.Same(first, second);
        await request.CancelAsync();
        await stop.CancelAsync(); // The earlier use's registrations are gone: neither token reaches the reused wait.
        Assert.False(secondTask.IsCompleted);
        Assert.Equal(1, _signal.WaitCount);

        _signal.Publish();
        Assert.Equal(WaitOutcome.Changed, await Within(secondTask));
    }

    [Fact]
    public async Task The_first_of_signal_deadline_and_cancellation_wins_and_the_others_do_nothing()
    {
        using var cts = new CancellationTokenSource();
        var (_, task) = Start(TimeSpan.FromSeconds(1), null, cts.Token);

        _signal.Publish();
        _time.Advance(TimeSpan.FromSeconds(1));
        await cts.CancelAsync();

        Assert.Equal(WaitOutcome.Changed, await Within(task));
    }

    [Fact]
    public async Task A_reused_wait_is_not_completed_by_the_deadline_of_its_earlier_use()
    {
        var (first, firstTask) = Start(TimeSpan.FromSeconds(1));
        _signal.Publish();
        Assert.Equal(WaitOutcome.Changed, await Within(firstTask));

        var (second, secondTask) = Start(TimeSpan.FromSeconds(10));
        Assert.Same(first, second); // Taken back from the pool: a wake-up allocates no new wait.

        _time.Advance(TimeSpan.FromSeconds(1)); // The first use's deadline: its heap entry is stale now.
        Assert.False(secondTask.IsCompleted);
        Assert.Equal(1, _signal.WaitCount);

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(WaitOutcome.TimedOut, await Within(secondTask));
    }

    [Fact]
    public async Task A_reused_wait_is_not_completed_by_a_publish_after_its_earlier_use_timed_out()
    {
        var (first, firstTask) = Start(TimeSpan.FromSeconds(1));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(WaitOutcome.TimedOut, await Within(firstTask));

        var other = new StreamSignal();
        var second = _scheduler.RentWait(NeverGone, this);
        Assert.Same(first, second);
        other.Add(second);
        var secondTask = second.Arm(TimeSpan.FromMinutes(1), CancellationToken.None, Ct).AsTask();

        _signal.Publish(); // The signal the first use was linked to: it no longer holds the wait.
        Assert.False(secondTask.IsCompleted);

        other.Publish();
        Assert.Equal(WaitOutcome.Changed, await Within(secondTask));
    }

    [Fact]
    public async Task One_publish_releases_every_linked_wait_once()
    {
        var tasks = Enumerable.Range(0, 1000).Select(_ => Start(TimeSpan.FromMinutes(1)).Task).ToList();
        Assert.Equal(1000, _signal.WaitCount);

        _signal.Publish();
        _signal.Publish();

        Assert.All(await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30), Ct), o => Assert.Equal(WaitOutcome.Changed, o));
        Assert.Equal(0, _signal.WaitCount);
    }

    [Fact]
    public async Task Deadlines_of_waits_released_by_the_signal_are_dropped_once_they_dominate_the_heap()
    {
        var tasks = Enumerable.Range(0, 1100).Select(_ => Start(TimeSpan.FromHours(1)).Task).ToList();
        _signal.Publish();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(1100, _scheduler.PendingCount); // Stale entries wait for the next schedule to be dropped.

        var (_, live) = Start(TimeSpan.FromHours(1));

        Assert.Equal(1, _scheduler.PendingCount);
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(WaitOutcome.TimedOut, await Within(live));
    }

    [Fact]
    public async Task Disposing_the_scheduler_completes_pending_waits_as_timed_out()
    {
        var (_, task) = Start(TimeSpan.FromMinutes(1));

        _scheduler.Dispose();

        Assert.Equal(WaitOutcome.TimedOut, await Within(task));
        Assert.Equal(0, _signal.WaitCount);
    }
}
