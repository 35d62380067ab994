using DurableStreams.Core.Live;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace DurableStreams.Core.Tests.Live;

public sealed class DeadlineSchedulerTests : IDisposable
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly DeadlineScheduler _scheduler;

    public DeadlineSchedulerTests() => _scheduler = new DeadlineScheduler(_time);

    public void Dispose() => _scheduler.Dispose();

    [Fact]
    public async Task A_deadline_completes_only_once_time_reaches_it()
    {
        using var waiter = _scheduler.Schedule(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);

        _time.Advance(TimeSpan.FromSeconds(5) - TimeSpan.FromTicks(1));
        Assert.False(waiter.Task.IsCompleted);

        _time.Advance(TimeSpan.FromTicks(1));
        Assert.True(waiter.Task.IsCompleted);
        Assert.True(await waiter.Task);
    }

    [Fact]
    public async Task A_zero_or_negative_delay_completes_at_once()
    {
        using var zero = _scheduler.Schedule(TimeSpan.Zero, CancellationToken.None);
        using var negative = _scheduler.Schedule(TimeSpan.FromSeconds(-3), CancellationToken.None);

        Assert.True(await zero.Task);
        Assert.True(await negative.Task);
        Assert.Equal(0, _scheduler.PendingCount);
    }

    [Fact]
    public void Several_deadlines_fire_in_deadline_order()
    {
        using var three = _scheduler.Schedule(TimeSpan.FromSeconds(3), CancellationToken.None);
        using var one = _scheduler.Schedule(TimeSpan.FromSeconds(1), CancellationToken.None);
        using var two = _scheduler.Schedule(TimeSpan.FromSeconds(2), CancellationToken.None);
        using var alsoOne = _scheduler.Schedule(TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.Equal(4, _scheduler.PendingCount);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([true, true, false, false], [one.Task.IsCompleted, alsoOne.Task.IsCompleted, two.Task.IsCompleted, three.Task.IsCompleted]);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([true, false], [two.Task.IsCompleted, three.Task.IsCompleted]);

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(three.Task.IsCompletedSuccessfully);
        Assert.Equal(0, _scheduler.PendingCount);
    }

    [Fact]
    public void A_later_schedule_with_an_earlier_deadline_rearms_the_timer()
    {
        using var late = _scheduler.Schedule(TimeSpan.FromMinutes(10), CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(1));
        using var early = _scheduler.Schedule(TimeSpan.FromSeconds(1), CancellationToken.None);

        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(early.Task.IsCompletedSuccessfully);
        Assert.False(late.Task.IsCompleted);
    }

    [Fact]
    public async Task A_single_large_advance_fires_deadlines_spread_over_time()
    {
        var waiters = Enumerable.Range(1, 50).Select(i => _scheduler.Schedule(TimeSpan.FromSeconds(i), CancellationToken.None)).ToList();

        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.All(await Task.WhenAll(waiters.Select(w => w.Task)), Assert.True);
        waiters.ForEach(w => w.Dispose());
    }

    [Fact]
    public async Task Cancellation_cancels_the_task()
    {
        using var cts = new CancellationTokenSource();
        using var waiter = _scheduler.Schedule(TimeSpan.FromSeconds(5), cts.Token);

        await cts.CancelAsync();

        Assert.True(waiter.Task.IsCanceled);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter.Task);
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(waiter.Task.IsCanceled);
    }

    [Fact]
    public async Task Disposing_a_waiter_completes_it_with_false()
    {
        var waiter = _scheduler.Schedule(TimeSpan.FromSeconds(5), CancellationToken.None);

        waiter.Dispose();

        Assert.False(await waiter.Task);
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(await waiter.Task);
    }

    [Fact]
    public async Task Disposing_a_fired_waiter_keeps_its_true_result()
    {
        var waiter = _scheduler.Schedule(TimeSpan.FromSeconds(1), CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(1));

        waiter.Dispose();

        Assert.True(await waiter.Task);
    }

    [Fact]
    public async Task A_thousand_waiters_fire_with_one_advance()
    {
        var waiters = Enumerable.Range(0, 1000)
            .Select(i => _scheduler.Schedule(TimeSpan.FromMilliseconds(1000 + (i % 10)), CancellationToken.None))
            .ToList();
        Assert.Equal(1000, _scheduler.PendingCount);
        Assert.DoesNotContain(waiters, w => w.Task.IsCompleted);

        _time.Advance(TimeSpan.FromMilliseconds(1009));

        Assert.All(waiters, w => Assert.True(w.Task.IsCompletedSuccessfully));
        Assert.All(await Task.WhenAll(waiters.Select(w => w.Task)), Assert.True);
        Assert.Equal(0, _scheduler.PendingCount);
        waiters.ForEach(w => w.Dispose());
    }

    [Fact]
    public void Abandoned_waiters_are_compacted_once_they_dominate()
    {
        var waiters = Enumerable.Range(0, 2000).Select(_ => _scheduler.Schedule(TimeSpan.FromHours(1), CancellationToken.None)).ToList();

        for (var i = 0; i < 1024; i++)
        {
            Assert.Equal(2000, _scheduler.PendingCount);
            waiters[i].Dispose();
        }

        Assert.Equal(2000 - 1024, _scheduler.PendingCount);
        _time.Advance(TimeSpan.FromHours(1));
        Assert.All(waiters.Skip(1024), w => Assert.True(w.Task.IsCompletedSuccessfully && w.Task.Result));
        Assert.Equal(0, _scheduler.PendingCount);
    }

    [Fact]
    public void Compaction_keeps_each_remaining_deadline_where_it_was()
    {
        // Distinct deadlines, scheduled out of order; every other one abandoned until the heap is rebuilt.
        var delays = Enumerable.Range(1, 2048).Select(i => i * 7919 % 2048 + 1).ToList();
        var waiters = delays.Select(d => (Delay: d, Waiter: _scheduler.Schedule(TimeSpan.FromSeconds(d), CancellationToken.None))).ToList();
        var abandoned = waiters.Where(w => w.Delay % 2 == 0).ToList();
        abandoned.ForEach(w => w.Waiter.Dispose());
        Assert.Equal(1024, _scheduler.PendingCount);

        for (var second = 1; second <= 2048; second++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            foreach (var (delay, waiter) in waiters.Where(w => w.Delay % 2 == 1))
            {
                Assert.Equal(delay <= second, waiter.Task.IsCompleted);
            }
        }
        Assert.All(abandoned, w => Assert.False(w.Waiter.Task.Result));
        Assert.Equal(0, _scheduler.PendingCount);
    }

    [Fact]
    public void Abandoned_waiters_among_many_live_ones_wait_for_half_the_queue()
    {
        var waiters = Enumerable.Range(0, 4000).Select(_ => _scheduler.Schedule(TimeSpan.FromHours(1), CancellationToken.None)).ToList();

        for (var i = 0; i < 1999; i++)
        {
            waiters[i].Dispose();
        }
        Assert.Equal(4000, _scheduler.PendingCount);

        waiters[1999].Dispose();
        Assert.Equal(2000, _scheduler.PendingCount);
        waiters.ForEach(w => w.Dispose());
    }

    [Fact]
    public void Abandoned_waiters_whose_deadlines_already_passed_no_longer_count_towards_compaction()
    {
        // Abandoned waiters stay in the heap until their deadline takes them out; they must stop counting then, or
        // the count outgrows the heap and a later compaction fails (it once threw inside an SSE response).
        var early = Enumerable.Range(0, 1000).Select(_ => _scheduler.Schedule(TimeSpan.FromSeconds(1), CancellationToken.None)).ToList();
        early.ForEach(w => w.Dispose());
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, _scheduler.PendingCount);

        var late = Enumerable.Range(0, 60).Select(_ => _scheduler.Schedule(TimeSpan.FromHours(1), CancellationToken.None)).ToList();
        late.Take(50).ToList().ForEach(w => w.Dispose());

        // 50 abandoned of 60: below the 1,024 that make compaction worth it, so all stay until their deadline.
        Assert.Equal(60, _scheduler.PendingCount);
        _time.Advance(TimeSpan.FromHours(1));
        Assert.All(late.Skip(50), w => Assert.True(w.Task.IsCompletedSuccessfully && w.Task.Result));
        Assert.Equal(0, _scheduler.PendingCount);
    }

    [Fact]
    public void A_waiter_abandoned_twice_or_after_its_deadline_is_not_counted_again()
    {
        var waiters = Enumerable.Range(0, 1100).Select(_ => _scheduler.Schedule(TimeSpan.FromHours(1), CancellationToken.None)).ToList();
        var fired = _scheduler.Schedule(TimeSpan.FromSeconds(1), CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(1));
        fired.Dispose();
        for (var i = 0; i < 1023; i++)
        {
            waiters[i].Dispose();
            waiters[i].Dispose();
        }

        // 1,023 counted: no compaction yet; the next abandonment reaches 1,024 and compacts.
        Assert.Equal(1100, _scheduler.PendingCount);
        waiters[1023].Dispose();
        Assert.Equal(1100 - 1024, _scheduler.PendingCount);
        waiters.ForEach(w => w.Dispose());
    }

    [Fact]
    public async Task Disposing_the_scheduler_completes_pending_waiters()
    {
        var scheduler = new DeadlineScheduler(_time);
        using var waiter = scheduler.Schedule(TimeSpan.FromHours(1), CancellationToken.None);

        scheduler.Dispose();

        Assert.True(await waiter.Task);
        Assert.Equal(0, scheduler.PendingCount);
        Assert.Throws<ObjectDisposedException>(() => scheduler.Schedule(TimeSpan.FromSeconds(1), CancellationToken.None));
    }
}
