using System.Threading.Channels;

namespace DurableStreams.Core.Live;

/// <summary>
/// The stores' <see cref="IStreamChangeFeed"/>. <see cref="Publish"/> only queues the change for each listener (a
/// lock-free read of the listener list and one channel write each; nothing at all while nobody listens), so a store may
/// call it on its commit path, inside the critical section that orders its commits.
/// </summary>
public sealed class StreamChangeFeed : IStreamChangeFeed, IAsyncDisposable
{
    private readonly object _gate = new();
    private Listener[] _listeners = [];

    /// <summary>Whether anyone listens; a store can skip building a change nobody hears.</summary>
    public bool HasListeners => Volatile.Read(ref _listeners).Length > 0;

    /// <summary>Raises a committed change. Never blocks and never throws for a listener's sake.</summary>
    public void Publish(StreamChanged change)
    {
        ArgumentNullException.ThrowIfNull(change);
        foreach (var listener in Volatile.Read(ref _listeners))
        {
            if (listener.Wants(change))
            {
                listener.Post(new Item(change, null));
            }
        }
    }

    /// <inheritdoc/>
    public IAsyncDisposable Subscribe(Func<StreamChanged, CancellationToken, ValueTask> listener, Func<StreamChanged, bool>? interest = null)
    {
        ArgumentNullException.ThrowIfNull(listener);
        var added = new Listener(this, listener, interest);
        lock (_gate)
        {
            _listeners = [.. _listeners, added];
        }
        return added;
    }

    /// <inheritdoc/>
    public Task WhenDeliveredAsync(CancellationToken cancellationToken = default)
    {
        var listeners = Volatile.Read(ref _listeners);
        if (listeners.Length == 0)
        {
            return Task.CompletedTask;
        }
        var marks = new Task[listeners.Length];
        for (var i = 0; i < listeners.Length; i++)
        {
            var mark = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            listeners[i].Post(new Item(null, mark));
            marks[i] = mark.Task;
        }
        return Task.WhenAll(marks).WaitAsync(cancellationToken);
    }

    /// <summary>Ends every subscription (their queued changes are dropped).</summary>
    public async ValueTask DisposeAsync()
    {
        Listener[] listeners;
        lock (_gate)
        {
            listeners = _listeners;
            _listeners = [];
        }
        foreach (var listener in listeners)
        {
            await listener.StopAsync().ConfigureAwait(false);
        }
    }

    private void Remove(Listener listener)
    {
        lock (_gate)
        {
            _listeners = Array.FindAll(_listeners, l => !ReferenceEquals(l, listener));
        }
    }

    /// <summary>A queued change, or a delivery mark that completes when the worker reaches it.</summary>
    private readonly record struct Item(StreamChanged? Change, TaskCompletionSource? Mark);

    private sealed class Listener : IAsyncDisposable
    {
        private readonly StreamChangeFeed _feed;
        private readonly Func<StreamChanged, CancellationToken, ValueTask> _handler;
        private readonly Func<StreamChanged, bool>? _interest;
        private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true });
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _worker;

        public Listener(StreamChangeFeed feed, Func<StreamChanged, CancellationToken, ValueTask> handler, Func<StreamChanged, bool>? interest)
        {
            _feed = feed;
            _handler = handler;
            _interest = interest;
            _worker = Task.Run(RunAsync);
        }

        public bool Wants(StreamChanged change)
        {
            try
            {
                return _interest is null || _interest(change);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                return true; // A broken filter must not hide changes.
            }
        }

        public void Post(Item item)
        {
            if (!_queue.Writer.TryWrite(item))
            {
                // Unsubscribed meanwhile: nothing will handle it, so a mark is already reached.
                item.Mark?.TrySetResult();
            }
        }

        private async Task RunAsync()
        {
            var token = _stop.Token;
            await foreach (var item in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                if (item.Mark is { } mark)
                {
                    mark.TrySetResult();
                    continue;
                }
                if (token.IsCancellationRequested)
                {
                    continue;
                }
                try
                {
                    await _handler(item.Change!, token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    // The listener's own failure; it loses this change only (see IStreamChangeFeed.Subscribe).
                }
            }
        }

        private int _stopped;

        public async Task StopAsync()
        {
            if (Interlocked.Exchange(ref _stopped, 1) == 0)
            {
                _queue.Writer.TryComplete();
                await _stop.CancelAsync().ConfigureAwait(false);
            }
            // Queued marks are still completed while the worker drains the queue.
            await _worker.ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            _feed.Remove(this);
            await StopAsync().ConfigureAwait(false);
        }
    }
}
