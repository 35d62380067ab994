namespace DurableStreams.Core.Live;

/// <summary>
/// Completes tasks at deadlines using one timer for all waiters (long-poll timeouts, SSE lifetimes), instead of a timer
/// per request. Deadlines live in a min-heap; the timer is armed for the earliest. Abandoned waits (their data came
/// first) are dropped lazily and the heap is compacted when they dominate it.
/// </summary>
public sealed class DeadlineScheduler : IDisposable
{
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private readonly object _gate = new();
    private readonly PriorityQueue<Waiter, long> _queue = new();
    private long _armedFor = long.MaxValue;
    private int _abandoned;
    private bool _disposed;

    public DeadlineScheduler(TimeProvider timeProvider)
    {
        _time = timeProvider;
        _timer = timeProvider.CreateTimer(static s => ((DeadlineScheduler)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Number of pending deadlines, including abandoned ones not yet dropped.</summary>
    public int PendingCount
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>
    /// Returns a handle whose <see cref="Waiter.Task"/> completes (true) after <paramref name="delay"/>, or is cancelled
    /// by <paramref name="cancellationToken"/>. Dispose the handle when the deadline is no longer needed.
    /// </summary>
    public Waiter Schedule(TimeSpan delay, CancellationToken cancellationToken)
    {
        var now = _time.GetTimestamp();
        var deadline = now + (long)(Math.Max(0, delay.TotalSeconds) * _time.TimestampFrequency);
        var waiter = new Waiter(this, cancellationToken);
        bool fireNow;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            fireNow = deadline <= now;
            if (!fireNow)
            {
                waiter.Queued = true;
                _queue.Enqueue(waiter, deadline);
                if (deadline < _armedFor)
                {
                    Arm(deadline, now);
                }
            }
        }
        if (fireNow)
        {
            waiter.Complete();
        }
        return waiter;
    }

    private void Arm(long deadline, long now)
    {
        _armedFor = deadline;
        var ticks = Math.Max(1, deadline - now);
        _timer.Change(TimeSpan.FromSeconds((double)ticks / _time.TimestampFrequency), Timeout.InfiniteTimeSpan);
    }

    private void Fire()
    {
        List<Waiter>? due = null;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            var now = _time.GetTimestamp();
            while (_queue.TryPeek(out var waiter, out var deadline) && deadline <= now)
            {
                _queue.Dequeue();
                Unqueue(waiter);
                (due ??= []).Add(waiter);
            }
            _armedFor = long.MaxValue;
            if (_queue.TryPeek(out _, out var next))
            {
                Arm(next, now);
            }
        }
        if (due is not null)
        {
            foreach (var waiter in due)
            {
                waiter.Complete();
            }
        }
    }

    private void OnAbandoned(Waiter abandoned)
    {
        lock (_gate)
        {
            // Only waiters still in the heap count: one its deadline already took out is not there to compact. (A waiter
            // is abandoned at most once: its task completes only once.)
            if (_disposed || !abandoned.Queued)
            {
                return;
            }
            abandoned.Counted = true;
            if (++_abandoned < 1024 || _abandoned < _queue.Count / 2)
            {
                return;
            }
            // Filter in heap order and rebuild in one pass (O(n)); dequeuing everything would be O(n log n), and with
            // hundreds of live readers that recurs every few hundred wake-ups.
            var live = new List<(Waiter, long)>(_queue.Count - _abandoned);
            foreach (var (waiter, deadline) in _queue.UnorderedItems)
            {
                if (waiter.Task.IsCompleted)
                {
                    Unqueue(waiter);
                }
                else
                {
                    live.Add((waiter, deadline));
                }
            }
            _queue.Clear();
            _queue.EnqueueRange(live);
        }
    }

    /// <summary>Bookkeeping for a waiter leaving the heap. Call under the gate.</summary>
    private void Unqueue(Waiter waiter)
    {
        waiter.Queued = false;
        if (waiter.Counted)
        {
            waiter.Counted = false;
            _abandoned--;
        }
    }

    public void Dispose()
    {
        List<Waiter> pending;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            pending = [.. _queue.UnorderedItems.Select(i => i.Element)];
            _queue.Clear();
        }
        _timer.Dispose();
        foreach (var waiter in pending)
        {
            waiter.Complete();
        }
    }

    /// <summary>
    /// The second half of every store's live wait: the stream's signal against a deadline. Returns
    /// <see cref="WaitOutcome.Gone"/> when the wake-up came from a deletion (<paramref name="isGone"/> of
    /// <paramref name="state"/>; a static function and its state, so a wait allocates no closure).
    /// </summary>
    public async ValueTask<WaitOutcome> WaitForSignalAsync<TState>(Task signal, TimeSpan timeout, Func<TState, bool> isGone, TState state, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(signal);
        ArgumentNullException.ThrowIfNull(isGone);
        using var deadline = Schedule(timeout, cancellationToken);
        var first = await Task.WhenAny(signal, deadline.Task).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        if (first != signal)
        {
            return WaitOutcome.TimedOut;
        }
        return isGone(state) ? WaitOutcome.Gone : WaitOutcome.Changed;
    }

    /// <summary>A scheduled deadline.</summary>
    public sealed class Waiter : IDisposable
    {
        private readonly DeadlineScheduler _owner;
        private readonly TaskCompletionSource<bool> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly CancellationTokenRegistration _registration;

        internal Waiter(DeadlineScheduler owner, CancellationToken cancellationToken)
        {
            _owner = owner;
            if (cancellationToken.CanBeCanceled)
            {
                _registration = cancellationToken.Register(static (s, ct) => ((Waiter)s!)._tcs.TrySetCanceled(ct), this);
            }
        }

        /// <summary>Completes with true at the deadline; cancelled with the token.</summary>
        public Task<bool> Task => _tcs.Task;

        /// <summary>In the owner's heap; guarded by the owner's gate.</summary>
        internal bool Queued;

        /// <summary>Abandoned and counted in the owner's abandoned count; guarded by the owner's gate.</summary>
        internal bool Counted;

        internal void Complete()
        {
            _registration.Dispose();
            _tcs.TrySetResult(true);
        }

        /// <summary>Abandons the deadline (for example because data arrived first).</summary>
        public void Dispose()
        {
            _registration.Dispose();
            if (_tcs.TrySetResult(false))
            {
                _owner.OnAbandoned(this);
            }
        }
    }
}
