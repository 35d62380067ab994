using System.Collections.Concurrent;
using System.Threading.Channels;
using DurableStreams.Core.Subscriptions;
using Microsoft.Extensions.Logging;

namespace DurableStreams.Subscriptions.Wakes;

/// <summary>
/// When subscriptions are evaluated: a de-duplicating queue drained by one worker, a local timer per subscription for
/// lease expiry and retry times, and (with shared state) a periodic poll for due work other nodes scheduled. Enqueuing
/// never blocks, so the change listener and the API calls only ever queue.
/// </summary>
internal sealed class WakeScheduler(TimeProvider time, ILogger logger, ISubscriptionRepository repository, Func<string, CancellationToken, Task> evaluate)
{
    /// <summary>Local wake-ups at lease expiry and retry times, by subscription; guarded by itself.</summary>
    private readonly Dictionary<string, ITimer> _timers = new(StringComparer.Ordinal);
    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, byte> _queued = new(StringComparer.Ordinal);
    private volatile bool _running;
    private Task? _worker;
    private ITimer? _duePoll;
    private int _polling;
    private CancellationToken _stopping;

    /// <summary>Starts the worker; with <paramref name="duePollInterval"/>, also the poll of shared due work.</summary>
    public void Start(TimeSpan? duePollInterval, CancellationToken stopping)
    {
        _stopping = stopping;
        _running = true;
        _worker = Task.Run(() => RunWorkerAsync(stopping), CancellationToken.None);
        if (duePollInterval is { } interval)
        {
            _duePoll = time.CreateTimer(static state => ((WakeScheduler)state!).PollDue(), this, interval, interval);
        }
    }

    /// <summary>Queues an evaluation of <paramref name="id"/> (once, however often it is asked for before it runs).</summary>
    public void Enqueue(string id)
    {
        if (_queued.TryAdd(id, 0) && !_queue.Writer.TryWrite(id))
        {
            _queued.TryRemove(id, out _);
        }
    }

    /// <summary>Wakes the subscription's evaluation at <paramref name="when"/> (lease expiry or retry).</summary>
    public void ScheduleAt(string id, DateTimeOffset when)
    {
        var delay = when - time.GetUtcNow();
        if (delay < TimeSpan.Zero)
        {
            delay = TimeSpan.Zero;
        }
        lock (_timers)
        {
            if (_timers.Remove(id, out var previous))
            {
                previous.Dispose();
            }
            if (!_running)
            {
                return;
            }
            _timers[id] = time.CreateTimer(static state =>
            {
                var (scheduler, subscriptionId) = ((WakeScheduler, string))state!;
                scheduler.Enqueue(subscriptionId);
            }, (this, id), delay, Timeout.InfiniteTimeSpan);
        }
    }

    public void CancelTimer(string id)
    {
        lock (_timers)
        {
            if (_timers.Remove(id, out var timer))
            {
                timer.Dispose();
            }
        }
    }

    /// <summary>Stops polling and queueing and waits for the worker; the caller has cancelled the stopping token.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _running = false;
        if (_duePoll is { } poll)
        {
            await poll.DisposeAsync();
        }
        _queue.Writer.TryComplete();
        if (_worker is { } worker)
        {
            await worker.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        lock (_timers)
        {
            foreach (var timer in _timers.Values)
            {
                timer.Dispose();
            }
            _timers.Clear();
        }
    }

    private async Task RunWorkerAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var id in _queue.Reader.ReadAllAsync(cancellationToken))
            {
                _queued.TryRemove(id, out _);
                try
                {
                    await evaluate(id, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    SubscriptionLog.EvaluateFailed(logger, ex, id);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>Enqueues expired leases and due retries, including those a node that has died had scheduled.</summary>
    private void PollDue()
    {
        if (!_running || Interlocked.Exchange(ref _polling, 1) == 1)
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                foreach (var id in await repository.ListDueAsync(time.GetUtcNow(), _stopping))
                {
                    Enqueue(id);
                }
            }
            catch (Exception ex) when (!_stopping.IsCancellationRequested)
            {
                SubscriptionLog.SharedStateFailed(logger, ex);
            }
            catch (OperationCanceledException)
            {
                // Stopping.
            }
            finally
            {
                Volatile.Write(ref _polling, 0);
            }
        }, CancellationToken.None);
    }
}
