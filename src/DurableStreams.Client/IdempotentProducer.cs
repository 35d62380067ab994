using System.Globalization;
using DurableStreams.Client.Internal;
using DurableStreams.Protocol;

namespace DurableStreams.Client;

/// <summary>Batching settings of an <see cref="IdempotentProducer"/>.</summary>
public sealed record IdempotentProducerOptions
{
    /// <summary>5 ms linger, 1 MiB batches.</summary>
    public static IdempotentProducerOptions Default { get; } = new();

    /// <summary>How long the first queued message waits for company before its batch is sent; default 5 ms. Zero sends at once.</summary>
    public TimeSpan Linger { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>A batch is sent once it holds this many bytes (a larger single message goes alone); default 1 MiB.</summary>
    public int MaxBatchBytes { get; init; } = 1024 * 1024;
}

/// <summary>
/// Exactly-once appends (§5.2.1): messages are queued, batched (by <see cref="IdempotentProducerOptions.Linger"/> and
/// <see cref="IdempotentProducerOptions.MaxBatchBytes"/>) and sent with <c>Producer-Id</c>, <c>Producer-Epoch</c> and an
/// ordered <c>Producer-Seq</c>. One batch is in flight at a time (no pipelining), so order is the enqueue order.
/// A network failure, timeout, 429 or 5xx re-sends the same (id, epoch, seq), which the server deduplicates; a 403
/// (stale epoch) with auto-claim moves to the server's epoch + 1 and restarts at seq 0. The first failure that cannot
/// be retried stops the producer and is thrown by later <see cref="AppendAsync"/>, <see cref="FlushAsync"/> and
/// <see cref="CloseAsync"/> calls. For JSON streams each message must be one JSON value; batches are sent as an array.
/// </summary>
public sealed class IdempotentProducer : IAsyncDisposable
{
    private const int MaxClaims = 3;

    private readonly DurableStreamClient _client;
    private readonly Uri _url;
    private readonly string _contentType;
    private readonly bool _json;
    private readonly bool _autoClaim;
    private readonly IdempotentProducerOptions _options;
    private readonly Lock _gate = new();
    private readonly List<ReadOnlyMemory<byte>> _queue = [];
    private readonly List<TaskCompletionSource> _idleWaiters = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _worker;
    private long _queuedBytes;
    private long _firstQueuedAt;
    private bool _sending;
    private bool _flushRequested;
    private bool _closed;
    private Exception? _failure;
    private TaskCompletionSource _wake = NewSignal();

    internal IdempotentProducer(DurableStreamClient client, string name, string producerId, long epoch, string contentType, bool autoClaim, IdempotentProducerOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(producerId);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentException.ThrowIfNullOrWhiteSpace(contentType);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxBatchBytes, 1, nameof(options));
        _client = client;
        _url = client.StreamUrl(name);
        Name = name;
        ProducerId = producerId;
        Epoch = epoch;
        _contentType = contentType;
        _json = ContentTypes.IsJson(contentType);
        _autoClaim = autoClaim;
        _options = options;
        _worker = Task.Run(RunAsync);
    }

    public string Name { get; }

    public string ProducerId { get; }

    /// <summary>The epoch in use; grows when auto-claim takes over from a newer one.</summary>
    public long Epoch { get; private set; }

    /// <summary>The <c>Producer-Seq</c> of the next batch.</summary>
    public long NextSeq { get; private set; }

    /// <summary>The tail after the last acknowledged batch, or null before the first.</summary>
    public string? NextOffset { get; private set; }

    /// <summary>Queues one message (for JSON streams, one JSON value). Completes once queued, not once sent; see <see cref="FlushAsync"/>.</summary>
    public ValueTask AppendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (message.IsEmpty)
        {
            throw new ArgumentException("A message must not be empty.", nameof(message));
        }
        lock (_gate)
        {
            ThrowIfUnusable();
            if (_queue.Count == 0)
            {
                _firstQueuedAt = _client.Options.TimeProvider.GetTimestamp();
            }
            // Copy: the caller may reuse its buffer as soon as this returns.
            _queue.Add(message.ToArray());
            _queuedBytes += message.Length;
            Wake();
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>Sends everything queued so far without waiting for the linger, and completes when all of it is acknowledged.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        TaskCompletionSource idle;
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw Failure();
            }
            if (_queue.Count == 0 && !_sending)
            {
                return;
            }
            idle = NewSignal();
            _idleWaiters.Add(idle);
            _flushRequested = true;
            Wake();
        }
        await idle.Task.WaitAsync(cancellationToken);
        lock (_gate)
        {
            if (_failure is not null)
            {
                throw Failure();
            }
        }
    }

    /// <summary>Flushes, stops the producer and, when <paramref name="closeStream"/> is true, closes the stream.</summary>
    public async Task CloseAsync(bool closeStream = false, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_closed && _failure is null && !closeStream)
            {
                return;
            }
        }
        try
        {
            await FlushAsync(cancellationToken);
        }
        finally
        {
            lock (_gate)
            {
                _closed = true;
                Wake();
            }
        }
        await _worker.WaitAsync(cancellationToken);
        if (closeStream)
        {
            var result = await _client.CloseAsync(Name, cancellationToken);
            NextOffset = result.NextOffset;
        }
    }

    /// <summary>Flushes and stops the producer (the stream stays open). Throws if queued messages could not be sent.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await CloseAsync(closeStream: false);
        }
        finally
        {
            await _stopping.CancelAsync();
            await _worker.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _stopping.Dispose();
        }
    }

    private async Task RunAsync()
    {
        var time = _client.Options.TimeProvider;
        Task? linger = null;
        long lingerFor = -1;
        while (true)
        {
            List<ReadOnlyMemory<byte>>? batch = null;
            Task wait;
            lock (_gate)
            {
                if (_failure is not null || (_closed && _queue.Count == 0))
                {
                    CompleteIdleWaiters();
                    return;
                }
                if (_queue.Count == 0)
                {
                    CompleteIdleWaiters();
                    wait = _wake.Task;
                }
                else
                {
                    var lingerLeft = _options.Linger - time.GetElapsedTime(_firstQueuedAt);
                    if (_flushRequested || _closed || _queuedBytes >= _options.MaxBatchBytes || lingerLeft <= TimeSpan.Zero)
                    {
                        batch = TakeBatch();
                        _sending = true;
                        wait = Task.CompletedTask;
                    }
                    else
                    {
                        // One timer per batch, not per wake-up: appends wake the worker but do not restart the linger.
                        if (linger is null || lingerFor != _firstQueuedAt)
                        {
                            linger = Task.Delay(lingerLeft, time, _stopping.Token);
                            lingerFor = _firstQueuedAt;
                        }
                        wait = Task.WhenAny(_wake.Task, linger);
                    }
                }
            }
            if (batch is null)
            {
                try
                {
                    await wait.WaitAsync(_stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    Fail(new ObjectDisposedException(nameof(IdempotentProducer)));
                    return;
                }
                continue;
            }
            try
            {
                await SendBatchAsync(batch, _stopping.Token);
                lock (_gate)
                {
                    _sending = false;
                }
            }
            catch (Exception ex)
            {
                Fail(ex);
                return;
            }
        }
    }

    private List<ReadOnlyMemory<byte>> TakeBatch()
    {
        var count = 0;
        long bytes = 0;
        while (count < _queue.Count && (count == 0 || bytes + _queue[count].Length <= _options.MaxBatchBytes))
        {
            bytes += _queue[count].Length;
            count++;
        }
        var batch = _queue.GetRange(0, count);
        _queue.RemoveRange(0, count);
        _queuedBytes -= bytes;
        _firstQueuedAt = _client.Options.TimeProvider.GetTimestamp();
        return batch;
    }

    private async Task SendBatchAsync(List<ReadOnlyMemory<byte>> batch, CancellationToken cancellationToken)
    {
        var body = Encode(batch);
        var retry = _client.Options.Retry;
        var attempt = 0;
        var claims = 0;
        while (true)
        {
            attempt++;
            DurableStreamException failure;
            TimeSpan? retryAfter = null;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(_client.Options.RequestTimeout);
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ReadOnlyMemoryContent(body) };
                    request.Content.Headers.TryAddWithoutValidation("Content-Type", _contentType);
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.ProducerId, ProducerId);
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.ProducerEpoch, Epoch.ToString(CultureInfo.InvariantCulture));
                    request.Headers.TryAddWithoutValidation(ProtocolHeaders.ProducerSeq, NextSeq.ToString(CultureInfo.InvariantCulture));
                    using var response = await _client.SendAsync(request, timeout.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        // 200 appended, 204 duplicate of an earlier attempt: both mean the batch is in the stream.
                        NextOffset = ResponseHeaders.Get(response, ProtocolHeaders.StreamNextOffset) ?? NextOffset;
                        NextSeq++;
                        return;
                    }
                    failure = await ResponseHeaders.ErrorAsync(response, timeout.Token);
                    if (failure.ErrorCode == DurableStreamErrorCode.StaleEpoch && _autoClaim && claims < MaxClaims && failure.ProducerEpoch is { } serverEpoch)
                    {
                        claims++;
                        Epoch = Math.Max(Epoch, serverEpoch) + 1;
                        NextSeq = 0;
                        attempt = 0;
                        continue;
                    }
                    if (!ResponseHeaders.IsRetryable(response.StatusCode))
                    {
                        throw failure;
                    }
                    retryAfter = ResponseHeaders.RetryAfter(response, _client.Options.TimeProvider);
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    failure = new DurableStreamException(DurableStreamErrorCode.Unavailable, null, $"No answer within {_client.Options.RequestTimeout}.", ex);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException)
                {
                    failure = new DurableStreamException(DurableStreamErrorCode.Unavailable, null, ex.Message, ex);
                }
            }
            if (attempt >= Math.Max(1, retry.MaxAttempts))
            {
                DurableStreamException.Throw(failure);
            }
            await Task.Delay(retry.DelayFor(attempt, retryAfter), _client.Options.TimeProvider, cancellationToken);
        }
    }

    private byte[] Encode(List<ReadOnlyMemory<byte>> batch)
    {
        var length = 0;
        foreach (var message in batch)
        {
            length += message.Length;
        }
        if (_json)
        {
            length += batch.Count + 1; // '[' + separators + ']'
        }
        var body = new byte[length];
        var at = 0;
        if (_json)
        {
            body[at++] = (byte)'[';
        }
        for (var i = 0; i < batch.Count; i++)
        {
            if (_json && i > 0)
            {
                body[at++] = (byte)',';
            }
            batch[i].Span.CopyTo(body.AsSpan(at));
            at += batch[i].Length;
        }
        if (_json)
        {
            body[at] = (byte)']';
        }
        return body;
    }

    private void Fail(Exception exception)
    {
        lock (_gate)
        {
            _failure ??= exception;
            _sending = false;
            _queue.Clear();
            _queuedBytes = 0;
            CompleteIdleWaiters();
        }
    }

    private void ThrowIfUnusable()
    {
        if (_failure is not null)
        {
            throw Failure();
        }
        ObjectDisposedException.ThrowIf(_closed, this);
    }

    private DurableStreamException Failure() => _failure is DurableStreamException ds
        ? new DurableStreamException(ds.ErrorCode, ds.StatusCode, ds.Message, ds) { NextOffset = ds.NextOffset, ProducerEpoch = ds.ProducerEpoch, ProducerExpectedSeq = ds.ProducerExpectedSeq }
        : new DurableStreamException(DurableStreamErrorCode.Unknown, null, "The producer stopped: " + _failure!.Message, _failure);

    private void CompleteIdleWaiters()
    {
        if (_queue.Count > 0 || (_sending && _failure is null))
        {
            return;
        }
        _flushRequested = false;
        foreach (var waiter in _idleWaiters)
        {
            waiter.TrySetResult();
        }
        _idleWaiters.Clear();
    }

    private void Wake()
    {
        var wake = _wake;
        _wake = NewSignal();
        wake.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
