using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;

namespace DurableStreams.Core.Live;

/// <summary>
/// One live wait of the memory and file stores as a single reusable object: the stream's <see cref="StreamSignal"/>,
/// the <see cref="DeadlineScheduler"/> and the cancellation token all complete the same wait, the first one wins, and the
/// awaiter gets a <see cref="ValueTask{TResult}"/> over it. It replaces a deadline handle with its own task, a
/// <c>Task.WhenAny</c> over two tasks and an async state machine per wait: an idle reader holds this object and one
/// cancellation registration per token (two tokens, such as a request's abort and the server's stop, need no linked
/// token source), and a wake-up allocates nothing (the object goes back to its scheduler's pool).
/// </summary>
/// <remarks>
/// <para><c>_state</c> is the wait's generation times two, plus one once it is completed; every completion is a
/// compare-and-swap from "this generation, waiting" to "this generation, done", so a late deadline or signal for an
/// earlier generation of a reused object can never complete the current one.</para>
/// <para>The signal's list links the wait until the signal releases it or the wait unlinks itself (both under the
/// signal's lock), so a wait is never reused while it is still linked. The cancellation callback cannot be tied to a
/// generation; a wait whose registration could not be removed before it ran is not reused.</para>
/// </remarks>
internal sealed class SignalWait : IValueTaskSource<WaitOutcome>
{
    /// <summary>Result set by the signal: turned into <see cref="WaitOutcome.Changed"/> or <see cref="WaitOutcome.Gone"/>.</summary>
    private const WaitOutcome Signalled = (WaitOutcome)(-1);

    private ManualResetValueTaskSourceCore<WaitOutcome> _core = new() { RunContinuationsAsynchronously = true };
    private long _state;
    private CancellationTokenRegistration _registration;
    private CancellationTokenRegistration _stopRegistration;
    private Func<object, bool>? _isGone;
    private object? _goneState;
    private readonly DeadlineScheduler _owner;

    internal SignalWait(DeadlineScheduler owner) => _owner = owner;

    /// <summary>The signal whose list holds this wait, or null; guarded by that signal's lock.</summary>
    internal StreamSignal? LinkedTo;

    /// <summary>Neighbours in <see cref="LinkedTo"/>'s list; guarded by that signal's lock.</summary>
    internal SignalWait? Previous, Next;

    /// <summary>True while this generation has a deadline in the scheduler's heap.</summary>
    private bool _hasDeadline;

    /// <summary>The value <c>_state</c> has while this generation waits (the deadline's heap entry keeps it).</summary>
    internal long WaitingState => Volatile.Read(ref _state) & ~1L;

    /// <summary>
    /// Prepares a rented wait: what tells a wake-up by deletion from one by data (<paramref name="isGone"/> of
    /// <paramref name="goneState"/>, read when the awaiter takes the result).
    /// </summary>
    internal void Start(Func<object, bool> isGone, object goneState)
    {
        _isGone = isGone;
        _goneState = goneState;
    }

    /// <summary>
    /// Arms the deadline and the cancellation; call once the wait is linked to its signal. Either token ends the wait
    /// the same way (<see cref="OperationCanceledException"/> of that token).
    /// </summary>
    internal ValueTask<WaitOutcome> Arm(TimeSpan timeout, CancellationToken stopToken, CancellationToken cancellationToken)
    {
        var token = _core.Version;
        var waiting = WaitingState;
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(CancelCallback, this);
        }
        if (stopToken.CanBeCanceled)
        {
            _stopRegistration = stopToken.UnsafeRegister(CancelCallback, this);
        }
        // Set before the entry is queued: the deadline may fire at once on the timer's thread and clear it.
        _hasDeadline = true;
        if (!_owner.ScheduleWait(this, waiting, timeout))
        {
            _hasDeadline = false;
            Expire(waiting);
        }
        return new ValueTask<WaitOutcome>(this, token);
    }

    /// <summary>Released by the signal: called under the signal's lock, after unlinking.</summary>
    internal void Release()
    {
        var waiting = WaitingState;
        if (Interlocked.CompareExchange(ref _state, waiting | 1, waiting) == waiting)
        {
            _core.SetResult(Signalled);
        }
    }

    /// <summary>The deadline of generation <paramref name="waiting"/> passed.</summary>
    internal void Expire(long waiting)
    {
        if (Interlocked.CompareExchange(ref _state, waiting | 1, waiting) == waiting)
        {
            _hasDeadline = false;
            LinkedTo?.Remove(this);
            _core.SetResult(WaitOutcome.TimedOut);
        }
    }

    /// <summary>Whether the heap entry made for generation <paramref name="waiting"/> is no longer needed.</summary>
    internal bool IsStale(long waiting) => Volatile.Read(ref _state) != waiting;

    private static readonly Action<object?, CancellationToken> CancelCallback = static (s, ct) => ((SignalWait)s!).Cancel(ct);

    private void Cancel(CancellationToken cancellationToken)
    {
        var state = Volatile.Read(ref _state);
        if ((state & 1) != 0 || Interlocked.CompareExchange(ref _state, state | 1, state) != state)
        {
            return;
        }
        LinkedTo?.Remove(this);
        _core.SetException(new OperationCanceledException(cancellationToken));
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    public WaitOutcome GetResult(short token)
    {
        try
        {
            var outcome = _core.GetResult(token);
            return outcome == Signalled ? (_isGone!(_goneState!) ? WaitOutcome.Gone : WaitOutcome.Changed) : outcome;
        }
        finally
        {
            Recycle();
        }
    }

    private void Recycle()
    {
        // Completed by the signal or the token: its heap entry stays until the heap drops it, counted as stale.
        if (_hasDeadline)
        {
            _hasDeadline = false;
            _owner.WaitAbandoned();
        }
        var reusable = Unregister(ref _registration) & Unregister(ref _stopRegistration);
        _isGone = null;
        _goneState = null;
        if (!reusable)
        {
            return; // The cancellation callback may still run against this object: let it go.
        }
        _core.Reset();
        Volatile.Write(ref _state, (Volatile.Read(ref _state) & ~1L) + 2);
        _owner.ReturnWait(this);
    }

    /// <summary>Removes a registration; false when its callback may still run against this object.</summary>
    private static bool Unregister(ref CancellationTokenRegistration registration)
    {
        var token = registration.Token;
        var removed = !token.CanBeCanceled || registration.Unregister() || !token.IsCancellationRequested;
        registration = default;
        return removed;
    }

    /// <summary>Rented waits, so a wake-up allocates nothing: bounded, the rest are left to the GC.</summary>
    internal sealed class Pool(DeadlineScheduler owner)
    {
        private const int MaxPooled = 4096;
        private readonly ConcurrentQueue<SignalWait> _free = new();
        private int _count;

        public SignalWait Rent()
        {
            if (_free.TryDequeue(out var wait))
            {
                Interlocked.Decrement(ref _count);
                return wait;
            }
            return new SignalWait(owner);
        }

        public void Return(SignalWait wait)
        {
            if (Interlocked.Increment(ref _count) <= MaxPooled)
            {
                _free.Enqueue(wait);
            }
            else
            {
                Interlocked.Decrement(ref _count);
            }
        }
    }
}
