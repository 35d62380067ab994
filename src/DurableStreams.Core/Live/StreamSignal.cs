namespace DurableStreams.Core.Live;

/// <summary>
/// A per-stream wake-up: waiters take <see cref="Current"/> and await it; every publish completes it, and the next one
/// is made when a waiter first asks for it. A thousand waiters on one stream cost one completion, and a stream nobody
/// waits on costs nothing: no task while idle, no allocation per append. Callers read the state and take
/// <see cref="Current"/> inside the same critical section that publishes, so no wake-up is lost between the check and
/// the wait.
/// </summary>
public sealed class StreamSignal
{
    private TaskCompletionSource? _current;

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

    public void Publish() => Interlocked.Exchange(ref _current, null)?.TrySetResult();
}
