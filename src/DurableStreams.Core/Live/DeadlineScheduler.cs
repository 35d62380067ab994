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
    private readonly PriorityQueue<Entry, long> _queue = new();
    private readonly SignalWait.Pool _waits;
    private long _armedFor = long.MaxValue;
    private int _abandoned;
    /// <summary>Signal waits completed otherwise whose heap entries are still queued (approximate: counted without the gate).</summary>
    private int _staleWaits;
    private bool _disposed;

    public DeadlineScheduler(TimeProvider timeProvider)
    {
        _time = timeProvider;
        _waits = new SignalWait.Pool(this);
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
                _queue.Enqueue(new Entry(waiter, null, 0), deadline);
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
        List<Entry>? due = null;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            var now = _time.GetTimestamp();
            while (_queue.TryPeek(out var entry, out var deadline) && deadline <= now)
            {
                _queue.Dequeue();
                Unqueue(entry);
                (due ??= []).Add(entry);
            }
            _armedFor = long.MaxValue;
            if (_queue.TryPeek(out _, out var next))
            {
                Arm(next, now);
            }
        }
        if (due is not null)
        {
            foreach (var entry in due)
            {
                entry.Complete();
            }
        }
    }

    /// <summary>
    /// The second half of the memory and file stores' live wait, as one reusable object: rents a <see cref="SignalWait"/>
    /// for the caller to link to the stream's signal inside the critical section that publishes, then to arm
    /// (<see cref="SignalWait.Arm"/>). <paramref name="isGone"/> of <paramref name="goneState"/> tells a wake-up by
    /// deletion (<see cref="WaitOutcome.Gone"/>) from one by data.
    /// </summary>
    internal SignalWait RentWait(Func<object, bool> isGone, object goneState)
    {
        var wait = _waits.Rent();
        wait.Start(isGone, goneState);
        return wait;
    }

    internal void ReturnWait(SignalWait wait) => _waits.Return(wait);

    /// <summary>
    /// Queues the deadline of a signal wait's generation <paramref name="waiting"/>; false when it is already due (the
    /// caller expires the wait) or the scheduler is disposed.
    /// </summary>
    internal bool ScheduleWait(SignalWait wait, long waiting, TimeSpan delay)
    {
        var now = _time.GetTimestamp();
        var deadline = now + (long)(Math.Max(0, delay.TotalSeconds) * _time.TimestampFrequency);
        if (deadline <= now)
        {
            return false;
        }
        lock (_gate)
        {
            if (_disposed)
            {
                return false;
            }
            var stale = Volatile.Read(ref _staleWaits) + _abandoned;
            if (stale >= 1024 && stale >= _queue.Count / 2)
            {
                Compact();
            }
            _queue.Enqueue(new Entry(null, wait, waiting), deadline);
            if (deadline < _armedFor)
            {
                Arm(deadline, now);
            }
        }
        return true;
    }

    /// <summary>A signal wait with a queued deadline ended otherwise: its entry is now stale.</summary>
    internal void WaitAbandoned() => Interlocked.Increment(ref _staleWaits);

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
            Compact();
        }
    }

    /// <summary>
    /// Drops abandoned and stale entries. Filters in heap order and rebuilds in one pass (O(n)); dequeuing everything
    /// would be O(n log n), and with hundreds of live readers that recurs every few hundred wake-ups. Call under the gate.
    /// </summary>
    private void Compact()
    {
        Volatile.Write(ref _staleWaits, 0);
        var live = new List<(Entry, long)>(Math.Max(0, _queue.Count - _abandoned));
        foreach (var (entry, deadline) in _queue.UnorderedItems)
        {
            if (entry.IsDone)
            {
                Unqueue(entry);
            }
            else
            {
                live.Add((entry, deadline));
            }
        }
        _queue.Clear();
        _queue.EnqueueRange(live);
    }

    /// <summary>Bookkeeping for an entry leaving the heap. Call under the gate.</summary>
    private void Unqueue(Entry entry)
    {
        if (entry.Waiter is not { } waiter)
        {
            return;
        }
        waiter.Queued = false;
        if (waiter.Counted)
        {
            waiter.Counted = false;
            _abandoned--;
        }
    }

    /// <summary>A heap entry: a <see cref="Waiter"/> handle, or generation <c>Waiting</c> of a <see cref="SignalWait"/>.</summary>
    private readonly record struct Entry(Waiter? Waiter, SignalWait? Wait, long Waiting)
    {
        public bool IsDone => Waiter?.Task.IsCompleted ?? Wait!.IsStale(Waiting);

        public void Complete()
        {
            if (Waiter is { } waiter)
            {
                waiter.Complete();
            }
            else
            {
                Wait!.Expire(Waiting);
            }
        }
    }

    public void Dispose()
    {
        List<Entry> pending;
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
        foreach (var entry in pending)
        {
            entry.Complete();
        }
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
