using System.Collections.Concurrent;
using System.Text;
using DurableStreams.Core;
using DurableStreams.Core.Live;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace DurableStreams.Storage.Postgres;

/// <summary>
/// This node's live wake-ups. Waiters on a stream share one <see cref="StreamSignal"/>; a commit made through this
/// node publishes it at once. Other nodes learn of commits through PostgreSQL NOTIFY: committed stream names are
/// queued, coalesced and sent by one background sender outside the append transaction, and one LISTEN connection per
/// node publishes the signals of names other nodes report. After the listening connection is (re)established every
/// signal is published, so waiters re-check the database and no wake-up lost while disconnected stays lost.
/// The same connection listens on a second channel for subscription link changes made by other nodes
/// (<see cref="SubscriptionsChanged"/>). Every wake-up from another node is also raised on this node's change feed as
/// <see cref="StreamChangeKind.ChangedElsewhere"/> (with an empty name for "every stream" after a reconnect).
/// With several hosts (<c>Host=a,b</c>) the listening connection goes to the read-write primary; after it breaks, each
/// attempt re-checks which host that is, so after a failover LISTEN is re-established on the promoted standby within
/// one retry delay of its promotion.
/// </summary>
internal sealed class PostgresWakeHub : IAsyncDisposable
{
    /// <summary>A NOTIFY payload must stay under 8000 bytes; longer names wake every waiter of the node.</summary>
    private const int MaxNameBytes = 7000;
    private const string Everything = "*";

    /// <summary>Pause between attempts to (re)establish the listening connection.</summary>
    private static readonly TimeSpan s_retryDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>Signals of streams that have waiters on this node, with their waiter counts; guarded by itself.</summary>
    private readonly Dictionary<string, Entry> _signals = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _pending = new(StringComparer.Ordinal);
    private readonly NpgsqlDataSource? _dataSource;
    private readonly NpgsqlDataSource? _listenSource;
    private readonly HostRecheck? _listenHosts;
    private readonly string _channel;
    private readonly string _subscriptionChannel;
    private readonly string _nodeId = Guid.NewGuid().ToString("N");
    private readonly CancellationTokenSource _stop = new();
    private readonly Task? _listener;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly StreamChangeFeed _changes;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private int _sending;
    private int _listenerConnects;

    public PostgresWakeHub(NpgsqlDataSource? dataSource, string connectionString, string schema, StreamChangeFeed changes, TimeProvider time, ILogger logger)
    {
        _changes = changes;
        _time = time;
        _dataSource = dataSource;
        _logger = logger;
        _channel = "ds_wake_" + schema;
        _subscriptionChannel = "ds_subs_" + schema;
        if (dataSource is not null)
        {
            // Its own unpooled data source, so its host states can be reset without touching the store's pool.
            _listenSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, KeepAlive = 10 });
            _listenHosts = new HostRecheck(_listenSource);
            _listener = Task.Run(ListenAsync);
        }
        else
        {
            _listening.TrySetResult();
        }
    }

    /// <summary>Completes once the first LISTEN is in place (for tests that race nodes from the start).</summary>
    public Task Listening => _listening.Task;

    /// <summary>
    /// Another node changed a subscription's links (its id), or, with null, changes may have been missed while this
    /// node was not listening. Raised on the listener's thread; handlers must not block.
    /// </summary>
    public event Action<string?>? SubscriptionsChanged;

    /// <summary>
    /// Tells the other nodes that subscription <paramref name="id"/>'s links changed. The change is already committed,
    /// so a failed NOTIFY is not the caller's failure: it happens when the database is unreachable, and then the other
    /// nodes' listeners lose their connection too and re-read everything when they reconnect.
    /// </summary>
    public async ValueTask PublishSubscriptionChangeAsync(string id, CancellationToken cancellationToken)
    {
        if (_dataSource is null)
        {
            return;
        }
        try
        {
            await using var command = _dataSource.CreateCommand("SELECT pg_notify(@channel, @node || '|' || @id)");
            command.Parameters.AddWithValue("channel", _subscriptionChannel);
            command.Parameters.AddWithValue("node", _nodeId);
            command.Parameters.AddWithValue("id", id);
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or ObjectDisposedException)
        {
            // See above: recovered by the listeners' reconnect.
            PostgresStoreLog.SubscriptionNotifyFailed(_logger, ex, id);
        }
    }

    /// <summary>Number of times the listening connection has been (re)established.</summary>
    public int ListenerConnects => Volatile.Read(ref _listenerConnects);

    /// <summary>
    /// Registers a waiter on <paramref name="name"/> and returns its registration; the signal lives while any waiter
    /// holds one, so streams nobody waits on cost nothing.
    /// </summary>
    public Registration Register(string name)
    {
        lock (_signals)
        {
            if (!_signals.TryGetValue(name, out var entry))
            {
                entry = new Entry();
                _signals[name] = entry;
            }
            entry.Waiters++;
            return new Registration(this, name, entry.Signal);
        }
    }

    private void Unregister(string name)
    {
        lock (_signals)
        {
            if (_signals.TryGetValue(name, out var entry) && --entry.Waiters == 0)
            {
                _signals.Remove(name);
            }
        }
    }

    private StreamSignal? Find(string name)
    {
        lock (_signals)
        {
            return _signals.TryGetValue(name, out var entry) ? entry.Signal : null;
        }
    }

    /// <summary>Wakes this node's waiters on <paramref name="name"/> and queues a NOTIFY for the other nodes.</summary>
    public void Committed(string name)
    {
        Find(name)?.Publish();
        if (_dataSource is null)
        {
            return;
        }
        _pending.TryAdd(Encoding.UTF8.GetByteCount(name) > MaxNameBytes ? Everything : name, 0);
        if (Interlocked.CompareExchange(ref _sending, 1, 0) == 0)
        {
            _ = Task.Run(SendAsync);
        }
    }

    private async Task SendAsync()
    {
        while (true)
        {
            var names = _pending.Keys.ToArray();
            foreach (var name in names)
            {
                _pending.TryRemove(name, out _);
            }
            if (names.Length > 0)
            {
                var entered = false;
                try
                {
                    await _sendGate.WaitAsync(_stop.Token).ConfigureAwait(false);
                    entered = true;
                    await using var command = _dataSource!.CreateCommand("SELECT pg_notify(@channel, @node || '|' || n) FROM unnest(@names) AS n");
                    command.Parameters.AddWithValue("channel", _channel);
                    command.Parameters.AddWithValue("node", _nodeId);
                    command.Parameters.AddWithValue("names", names);
                    await command.ExecuteNonQueryAsync(_stop.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is NpgsqlException or TimeoutException or OperationCanceledException or ObjectDisposedException)
                {
                    // Lost NOTIFYs are recovered by the other nodes' waits timing out and re-reading; nothing else to do.
                    if (!_stop.IsCancellationRequested)
                    {
                        PostgresStoreLog.WakeNotifyFailed(_logger, ex, names.Length);
                    }
                }
                finally
                {
                    if (entered)
                    {
                        _sendGate.Release();
                    }
                }
            }
            Volatile.Write(ref _sending, 0);
            if (_pending.IsEmpty || Interlocked.CompareExchange(ref _sending, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private async Task ListenAsync()
    {
        var token = _stop.Token;
        // The lost connection and the failed attempts since the listener last had one (at start: the failed attempts).
        var failures = 0;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await using var connection = _listenSource!.CreateConnection();
                connection.Notification += OnNotification;
                await connection.OpenAsync(token).ConfigureAwait(false);
                await using (var command = new NpgsqlCommand("LISTEN " + PostgresSchema.Quote(_channel) + "; LISTEN " + PostgresSchema.Quote(_subscriptionChannel), connection))
                {
                    await command.ExecuteNonQueryAsync(token).ConfigureAwait(false);
                }
                var reconnected = Interlocked.Increment(ref _listenerConnects) > 1;
                if (failures > 0)
                {
                    PostgresStoreLog.ListenerReconnected(_logger, failures);
                }
                failures = 0;
                // Anything committed while no LISTEN was in place was missed: every waiter re-checks.
                PublishAll();
                if (reconnected)
                {
                    RaiseElsewhere(string.Empty);
                }
                SubscriptionsChanged?.Invoke(null);
                _listening.TrySetResult();
                while (!token.IsCancellationRequested)
                {
                    await connection.WaitAsync(token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or TimeoutException or IOException or System.Net.Sockets.SocketException)
            {
                if (token.IsCancellationRequested)
                {
                    return;
                }
                // The next attempt re-checks every host (the primary may have moved) instead of trusting cached states.
                _listenHosts!.Reset();
                // The first failure after a working connection (or at start) is a warning; the retries that follow are
                // debug detail, and the reconnect is reported once it succeeds.
                if (failures == 0)
                {
                    PostgresStoreLog.ListenerLost(_logger, ex, (long)s_retryDelay.TotalMilliseconds);
                    failures = 1;
                }
                else
                {
                    failures++;
                    PostgresStoreLog.ListenerReconnectFailed(_logger, ex, failures, (long)s_retryDelay.TotalMilliseconds);
                }
                try
                {
                    await Task.Delay(s_retryDelay, token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        var payload = e.Payload;
        var bar = payload.IndexOf('|', StringComparison.Ordinal);
        if (bar < 0 || payload.AsSpan(0, bar).SequenceEqual(_nodeId))
        {
            return;
        }
        var name = payload[(bar + 1)..];
        if (e.Channel == _subscriptionChannel)
        {
            SubscriptionsChanged?.Invoke(name);
            return;
        }
        if (name == Everything)
        {
            PublishAll();
            RaiseElsewhere(string.Empty);
        }
        else
        {
            Find(name)?.Publish();
            RaiseElsewhere(name);
        }
    }

    /// <summary>Raises another node's change (empty name: any stream) on this node's change feed.</summary>
    private void RaiseElsewhere(string name)
    {
        if (_changes.HasListeners)
        {
            _changes.Publish(new StreamChanged(StreamChangeKind.ChangedElsewhere, name, default, _time.GetUtcNow()));
        }
    }

    private void PublishAll()
    {
        StreamSignal[] signals;
        lock (_signals)
        {
            signals = [.. _signals.Values.Select(e => e.Signal)];
        }
        foreach (var signal in signals)
        {
            signal.Publish();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_listener is not null)
        {
            await _listener.ConfigureAwait(false);
        }
        // Let an in-flight NOTIFY finish before the data source goes; later sends see the cancelled token and stop.
        await _sendGate.WaitAsync().ConfigureAwait(false);
        _sendGate.Release();
        if (_listenSource is not null)
        {
            await _listenSource.DisposeAsync().ConfigureAwait(false);
        }
        PublishAll();
    }

    /// <summary>One waiter's hold on a stream's signal.</summary>
    public readonly struct Registration(PostgresWakeHub hub, string name, StreamSignal signal) : IDisposable
    {
        /// <summary>The task the next publish completes.</summary>
        public Task Current => signal.Current;

        public void Dispose() => hub.Unregister(name);
    }

    private sealed class Entry
    {
        public StreamSignal Signal { get; } = new();
        public int Waiters { get; set; }
    }
}
