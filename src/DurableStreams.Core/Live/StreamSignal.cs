namespace DurableStreams.Core.Live;

/// <summary>
/// A per-stream wake-up: waiters take <see cref="Current"/> and await it; every publish completes it, and the next one
/// is made when a waiter first asks for it. A thousand waiters on one stream cost one completion, and a stream nobody
/// waits on costs nothing: no task while idle, no allocation per append. Callers read the state and take
/// <see cref="Current"/> inside the same critical section that publishes, so no wake-up is lost between the check and
/// the wait. The memory and file stores' waits link themselves instead (<see cref="Add"/>): a list of reusable
/// <see cref="SignalWait"/>s that a publish releases in the order they came, each with no task of its own.
/// </summary>
public sealed class StreamSignal
{
    private TaskCompletionSource? _current;
    // The waits' list is guarded by this object's monitor: no lock object per stream (a million streams, docs/benchmarks.md).
    private SignalWait? _first;
    private SignalWait? _last;

    public Task Current
    {
        get
        {
            var current = Volatile.Read(ref _current);
            if (current is null)
            {
                var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                current = Interlocked.CompareExchange(ref _current, created, null) ?? created;
            }
            return current.Task;
        }
    }

    /// <summary>Number of linked waits (for tests and diagnostics).</summary>
    internal int WaitCount
    {
        get
        {
            lock (this)
            {
                var count = 0;
                for (var wait = _first; wait is not null; wait = wait.Next)
                {
                    count++;
                }
                return count;
            }
        }
    }

    /// <summary>True when nobody waits: no linked wait and no <see cref="Current"/> handed out since the last publish.</summary>
    internal bool Idle => Volatile.Read(ref _first) is null && Volatile.Read(ref _current) is null;

    public void Publish()
    {
        Interlocked.Exchange(ref _current, null)?.TrySetResult();
        if (Volatile.Read(ref _first) is null)
        {
            return;
        }
        lock (this)
        {
            var wait = _first;
            _first = _last = null;
            while (wait is not null)
            {
                var next = wait.Next;
                wait.Next = wait.Previous = null;
                wait.LinkedTo = null;
                // Only queues the waiter's continuation (RunContinuationsAsynchronously): cheap under the lock.
                wait.Release();
                wait = next;
            }
        }
    }

    /// <summary>Links <paramref name="wait"/> to the next publish. Call in the critical section that publishes.</summary>
    internal void Add(SignalWait wait)
    {
        lock (this)
        {
            wait.LinkedTo = this;
            wait.Previous = _last;
            wait.Next = null;
            if (_last is null)
            {
                _first = wait;
            }
            else
            {
                _last.Next = wait;
            }
            _last = wait;
        }
    }

    /// <summary>Unlinks a wait that ended otherwise (deadline, cancellation); nothing if a publish took it first.</summary>
    internal void Remove(SignalWait wait)
    {
        lock (this)
        {
            if (!ReferenceEquals(wait.LinkedTo, this))
            {
                return;
            }
            if (wait.Previous is null)
            {
                _first = wait.Next;
            }
            else
            {
                wait.Previous.Next = wait.Next;
            }
            if (wait.Next is null)
            {
                _last = wait.Previous;
            }
            else
            {
                wait.Next.Previous = wait.Previous;
            }
            wait.Next = wait.Previous = null;
            wait.LinkedTo = null;
        }
    }
}
