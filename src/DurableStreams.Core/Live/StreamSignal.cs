namespace DurableStreams.Live;

/// <summary>
/// A per-stream wake-up: waiters take <see cref="Current"/> and await it; every publish completes it and installs a new
/// one. A thousand waiters on one stream cost one completion. Callers read the state and take <see cref="Current"/>
/// inside the same critical section that publishes, so no wake-up is lost between the check and the wait.
/// </summary>
public sealed class StreamSignal
{
    private TaskCompletionSource _current = New();

    public Task Current => Volatile.Read(ref _current).Task;

    public void Publish() => Interlocked.Exchange(ref _current, New()).TrySetResult();

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
